// The reply box: Enter sends, Shift+Enter breaks the line; every send carries a client id so a
// double click, a slow network or a retried request never shows or stores a message twice.

import { api } from "./api.js";
import { EmailFields } from "./email-composer.js";
import { EmojiPicker } from "./emoji.js";
import { el, humanSize } from "./render.js";
import { TemplatePicker } from "./templates.js";
import { Suggest, rank } from "./suggest.js";

export class Composer {
  constructor({ form, thread, realtime, maxUploadBytes, toast, myTeams }) {
    Object.assign(this, { form, thread, realtime, maxUploadBytes, toast, myTeams: myTeams || [] });
    this.text = form.querySelector("textarea");
    this.setUpSuggestions();
    this.fileInput = form.querySelector('input[type="file"]');
    this.error = form.querySelector(".composer-error");
    this.notice = form.querySelector(".composer-notice");
    this.replyTab = form.querySelector('[data-mode="text"]');
    this.mode = "text";
    this.noteOnly = false; // notes only because the channel cannot send replies
    this.lastTyping = 0;
    this.pending = new Map(); // client_id -> the optimistic message and how to send it again
    this.emailFields = new EmailFields(form);
    this.templates = new TemplatePicker(form.querySelector(".template-picker"), {
      onSend: (template, content) => this.sendTemplate(template, content),
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.text.addEventListener("input", () => this.typing());
    this.fileInput.addEventListener("change", () => {
      this.sendFiles([...this.fileInput.files]);
      this.fileInput.value = "";
    });
    for (const tab of form.querySelectorAll("[data-mode]")) {
      tab.addEventListener("click", () => this.setMode(tab.dataset.mode));
    }
    const drop = form.closest(".thread-pane");
    drop.addEventListener("dragover", (event) => {
      if (!this.thread.id || !event.dataTransfer.types.includes("Files")) return;
      event.preventDefault();
      drop.classList.add("dragging");
    });
    drop.addEventListener("dragleave", (event) => {
      if (!drop.contains(event.relatedTarget)) drop.classList.remove("dragging");
    });
    drop.addEventListener("drop", (event) => {
      drop.classList.remove("dragging");
      if (!this.thread.id || !event.dataTransfer.files.length) return;
      event.preventDefault();
      this.sendFiles([...event.dataTransfer.files]);
    });
    this.emoji = new EmojiPicker({
      toggle: form.querySelector(".emoji-toggle"),
      box: form.querySelector(".emoji-picker"),
      onPick: (emoji) => this.insertText(emoji),
    });
  }

  // --- `/` canned replies (in a reply), `@` mentions (in a note) ----------------------------
  setUpSuggestions() {
    this.cache = { canned: null, mentionable: null, conversationId: null };
    this.suggest = new Suggest({
      field: this.text,
      container: this.form,
      label: "Suggestions",
      onPick: (value) => this.replaceToken(value.insert),
    });
    // Before the Enter-sends handler: while the list is open its keys are the list's.
    this.text.addEventListener("keydown", (event) => this.suggest.handleKey(event), { capture: true });
    this.text.addEventListener("input", () => this.refreshSuggestions());
    this.text.addEventListener("click", () => this.refreshSuggestions());
  }

  // The `/word` or `@word` the caret is at, or null.
  tokenAtCaret() {
    const before = this.text.value.slice(0, this.text.selectionStart);
    const match = before.match(this.mode === "note" ? /(^|\s)@([\w.@+-]*)$/ : /(^|\s)\/([\w-]*)$/);
    if (!match) return null;
    return { query: match[2], start: before.length - match[2].length - 1, end: this.text.selectionStart };
  }

  async refreshSuggestions() {
    const token = this.tokenAtCaret();
    const id = this.thread.id;
    if (!token || !id) return this.suggest.hide();
    if (this.cache.conversationId !== id) this.cache = { canned: null, mentionable: null, conversationId: id };
    const mode = this.mode;
    try {
      if (mode === "note") {
        this.cache.mentionable ||= api.mentionable(id).then((data) => data.results);
        const people = (await this.cache.mentionable).filter((p) => p.id !== this.thread.me.id);
        if (mode !== this.mode || id !== this.thread.id) return;
        const items = rank(people, token.query, (p) => [p.username, ...p.name.split(/\s+/), p.name]).slice(0, 8);
        this.suggest.show(items.map((p) => ({ key: `u${p.id}`, text: p.name, hint: `@${p.username}`, value: { insert: `@${p.username} ` } })));
      } else {
        this.cache.canned ||= api.canned({ conversation: id }).then((data) => data.results);
        const responses = await this.cache.canned;
        if (mode !== this.mode || id !== this.thread.id) return;
        const items = rank(responses, token.query, (r) => [r.shortcut, r.title, r.content]).slice(0, 8);
        this.suggest.show(items.map((r) => ({ key: `c${r.id}`, text: `/${r.shortcut}`, hint: r.title || r.rendered.slice(0, 60), value: { insert: r.rendered } })));
      }
    } catch (error) {
      this.suggest.hide();
      this.cache = { canned: null, mentionable: null, conversationId: null };
    }
  }

  replaceToken(text) {
    const token = this.tokenAtCaret();
    if (!token) return this.insertText(text);
    const value = this.text.value;
    this.text.value = value.slice(0, token.start) + text + value.slice(token.end);
    this.text.selectionStart = this.text.selectionEnd = token.start + text.length;
    this.text.focus();
  }

  forgetCanned() {
    this.cache.canned = null;
  }

  // The opened conversation: the provider says what the reply box offers (reply_mode): free
  // text, approved templates only (the picker), or private notes only — before anyone types.
  useConversation(conversation) {
    this.conversation = conversation;
    this.emailFields.use(conversation);
    const reason = conversation.reply_unavailable || "";
    const templatesOnly = conversation.reply_mode === "templates";
    this.replyMode = conversation.reply_mode || "text";
    this.replyTab.disabled = Boolean(reason);
    this.notice.hidden = !reason;
    this.notice.textContent = !reason
      ? ""
      : templatesOnly
        ? `Free text cannot be sent: ${reason}. Pick a template below; private notes still work.`
        : `Replies cannot be sent here: ${reason}. Private notes still work.`;
    if (templatesOnly) this.templates.show(conversation.id);
    else this.templates.hide();
    if (reason) this.setMode("note", { focus: false });
    else if (this.mode === "note" && this.noteOnly) this.setMode("text", { focus: false });
    this.noteOnly = Boolean(reason);
  }

  // A customer's message may reopen a closed window (WhatsApp's 24 hours): ask the server
  // again rather than guess, so the reply box follows the provider's rule.
  async customerWrote(conversationId) {
    if (this.replyMode !== "templates") return;
    try {
      const conversation = await api.conversation(conversationId);
      if (this.thread.id === conversationId) this.useConversation(conversation);
    } catch {
      /* the next open asks again */
    }
  }

  setMode(mode, { focus = true } = {}) {
    if (mode === "text" && this.replyTab.disabled) return;
    this.mode = mode;
    this.form.classList.toggle("note-mode", mode === "note");
    for (const tab of this.form.querySelectorAll("[data-mode]")) {
      tab.setAttribute("aria-pressed", tab.dataset.mode === mode ? "true" : "false");
    }
    this.suggest?.hide();
    this.text.placeholder = mode === "note" ? "Private note: only your team sees it (@ to mention)" : "Reply… (Enter to send, Shift+Enter for a new line, / for canned replies)";
    if (focus) this.text.focus();
  }

  insertText(text) {
    const { selectionStart: start, selectionEnd: end, value } = this.text;
    this.text.value = value.slice(0, start) + text + value.slice(end);
    this.text.selectionStart = this.text.selectionEnd = start + text.length;
    this.text.focus();
  }

  focus() {
    this.text.focus();
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  typing() {
    const now = Date.now();
    if (this.thread.id && this.mode === "text" && now - this.lastTyping > 3000) {
      this.lastTyping = now;
      this.realtime.send({ type: "typing", conversation_id: this.thread.id });
    }
  }

  submit() {
    const content = this.text.value;
    if (!content.trim() || !this.thread.id) return;
    const kind = this.mode === "note" ? "note" : "text";
    let extra;
    try {
      extra = this.emailFields.payload(kind);
    } catch (error) {
      this.showError(error.message);
      return;
    }
    this.text.value = ""; // cleared at once: a second Enter or click has nothing to send
    this.showError("");
    const clientId = crypto.randomUUID();
    const conversationId = this.thread.id;
    this.dispatch(clientId, conversationId, { content, kind }, () =>
      api.send(conversationId, { client_id: clientId, content, kind, ...extra }),
    );
  }

  sendTemplate(template, content) {
    if (!this.thread.id) return;
    this.showError("");
    const clientId = crypto.randomUUID();
    const conversationId = this.thread.id;
    this.dispatch(clientId, conversationId, { content, kind: "text" }, () =>
      api.send(conversationId, { client_id: clientId, template }),
    );
  }

  sendFiles(files) {
    if (!this.thread.id) return;
    const conversationId = this.thread.id;
    for (const file of files) {
      if (file.size > this.maxUploadBytes) {
        this.showError(`${file.name} is ${humanSize(file.size)}: files up to ${humanSize(this.maxUploadBytes)} can be sent.`);
        continue;
      }
      const clientId = crypto.randomUUID();
      const kind = this.mode === "note" ? "note" : "file";
      const attachment = { filename: file.name, mime_type: file.type, size: file.size, uploading: true };
      this.dispatch(clientId, conversationId, { content: "", kind, attachments: [attachment] }, () => {
        const form = new FormData();
        form.append("file", file);
        form.append("client_id", clientId);
        if (kind === "note") form.append("kind", "note");
        return api.upload(conversationId, form);
      });
    }
  }

  // Show the message now, send it, and let the server's copy replace it (by client id).
  async dispatch(clientId, conversationId, fields, request) {
    const optimistic = {
      id: null,
      client_id: clientId,
      conversation_id: conversationId,
      direction: "out",
      status: "sending",
      sender_name: "",
      attachments: [],
      created_at: new Date().toISOString(),
      updated_at: "",
      ...fields,
    };
    this.pending.set(clientId, { conversationId, fields, request });
    this.thread.upsertMessage(optimistic);
    try {
      const message = await request();
      this.pending.delete(clientId);
      this.thread.upsertMessage(message);
    } catch (error) {
      // Shown as failed with the reason; Retry sends the same client id again.
      this.thread.upsertMessage({ ...optimistic, status: "failed", failure_reason: error.detail || error.message, local: true });
    }
  }

  // Retry of a failed message: one that never reached us (same request again), or one the
  // provider refused (the retry endpoint).
  async retry(message) {
    const pending = message.client_id && this.pending.get(message.client_id);
    if (message.id == null && pending) {
      return this.dispatch(message.client_id, pending.conversationId, pending.fields, pending.request);
    }
    try {
      this.thread.upsertMessage(await api.retry(message.id));
    } catch (error) {
      this.toast(`Retry failed: ${error.detail || error.message}`);
    }
  }
}
