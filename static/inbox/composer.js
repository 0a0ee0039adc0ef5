// The reply box: Enter sends, Shift+Enter breaks the line; every send carries a client id so a
// double click, a slow network or a retried request never shows or stores a message twice.

import { api } from "./api.js";
import { EmailFields } from "./email-composer.js";
import { EmojiPicker } from "./emoji.js";
import { humanSize } from "./render.js";

export class Composer {
  constructor({ form, thread, realtime, maxUploadBytes, toast }) {
    Object.assign(this, { form, thread, realtime, maxUploadBytes, toast });
    this.text = form.querySelector("textarea");
    this.fileInput = form.querySelector('input[type="file"]');
    this.error = form.querySelector(".composer-error");
    this.notice = form.querySelector(".composer-notice");
    this.replyTab = form.querySelector('[data-mode="text"]');
    this.mode = "text";
    this.noteOnly = false; // notes only because the channel cannot send replies
    this.lastTyping = 0;
    this.pending = new Map(); // client_id -> the optimistic message and how to send it again
    this.emailFields = new EmailFields(form);
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

  // The opened conversation: where replies cannot be sent yet, say so and write notes only.
  useConversation(conversation) {
    this.emailFields.use(conversation);
    const reason = conversation.reply_unavailable || "";
    this.replyTab.disabled = Boolean(reason);
    this.notice.hidden = !reason;
    this.notice.textContent = reason ? `Replies cannot be sent here: ${reason}. Private notes still work.` : "";
    if (reason) this.setMode("note", { focus: false });
    else if (this.mode === "note" && this.noteOnly) this.setMode("text", { focus: false });
    this.noteOnly = Boolean(reason);
  }

  setMode(mode, { focus = true } = {}) {
    if (mode === "text" && this.replyTab.disabled) return;
    this.mode = mode;
    this.form.classList.toggle("note-mode", mode === "note");
    for (const tab of this.form.querySelectorAll("[data-mode]")) {
      tab.setAttribute("aria-pressed", tab.dataset.mode === mode ? "true" : "false");
    }
    this.text.placeholder = mode === "note" ? "Private note: only your team sees it" : "Reply… (Enter to send, Shift+Enter for a new line)";
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
