// The open conversation: header with its actions (actions.js), messages, the customer's card.

import { renderActions } from "./actions.js";
import { api } from "./api.js";
import { duplicatesSection, mergeButton, splitButton, undoButton } from "./merge.js";
import { closePopover } from "./popover.js";
import { Suggest, rank } from "./suggest.js";
import {
  avatar,
  channelTag,
  contactName,
  el,
  labelChip,
  olderThan,
  renderActivity,
  renderMessage,
  shortTime,
} from "./render.js";

const STATUS_RANK = { sending: 0, pending: 0, unknown: 0, sent: 1, delivered: 2, read: 3, failed: 4, received: 0 };

export class Thread {
  constructor({ root, header, messages, card, presence, me, managers, teams, actions, labelsBox, labelCatalog }) {
    Object.assign(this, { root, header, messages, card, presence, me, managers, teams, actions, labelsBox, labelCatalog });
    this.pendingActivity = []; // lines older than the oldest message shown, until it is
    this.setUpLabels();
    this.id = null;
    this.conversation = null;
    this.byId = new Map();
    this.byClient = new Map();
    this.cursor = null;
    // Set while the newest messages are not loaded (opened around a search hit): newer pages
    // load on scrolling down, and live messages wait for them.
    this.newerCursor = null;
    this.loadingOlder = false;
    this.loadingNewer = false;
    this.presenceTimers = new Map();
    this.messages.addEventListener("scroll", () => {
      if (this.messages.scrollTop < 300) this.loadOlder();
      if (this.newerCursor && this.isAtBottom()) this.loadNewer();
    });
  }

  // `around`: a message id to show in its context, scrolled to and highlighted.
  async open(id, { around } = {}) {
    this.id = id;
    const token = (this.openToken = Symbol());
    this.root.classList.add("loading");
    const data = await api.open(id, { around });
    if (token !== this.openToken) return null; // another conversation was opened meanwhile
    this.root.classList.remove("loading", "empty");
    this.show(data, { around });
    return data.conversation;
  }

  // Forget what is shown: messages, presence, and any older page still in flight.
  clear() {
    this.shown = Symbol();
    this.byId.clear();
    this.byClient.clear();
    this.presence.replaceChildren();
    this.presenceTimers.clear();
    this.messages.replaceChildren();
  }

  show(data, { around } = {}) {
    this.clear();
    this.cursor = data.next_cursor;
    this.newerCursor = data.newer_cursor || null;
    this.applyConversation(data.conversation);
    this.renderCard(data.conversation.contact);
    for (const message of [...data.messages].reverse()) this.insert(message);
    this.pendingActivity = [...(data.conversation.activity || [])];
    this.placePendingActivity();
    const hit = around != null && this.byId.get(Number(around));
    if (hit) this.showHit(hit);
    else this.scrollToBottom();
  }

  showHit(node) {
    for (const old of this.messages.querySelectorAll(".msg.hit-focus")) old.classList.remove("hit-focus");
    node.classList.add("hit-focus");
    node.scrollIntoView({ block: "center" });
  }

  async loadNewer() {
    if (!this.newerCursor || this.loadingNewer || !this.id) return;
    this.loadingNewer = true;
    const shown = this.shown;
    try {
      const page = await api.newerMessages(this.id, this.newerCursor);
      if (shown !== this.shown) return;
      for (const message of [...page.results].reverse()) {
        if (!this.byId.has(message.id)) this.insert(message);
      }
      this.newerCursor = page.newer_cursor;
    } finally {
      this.loadingNewer = false;
    }
  }

  // Activity lines between the messages by time; older than every message shown (while older
  // messages remain to load) they wait for their page.
  placePendingActivity() {
    const oldest = this.messages.querySelector(".msg[data-created]");
    const from = this.cursor && oldest ? Date.parse(oldest.dataset.created) : -Infinity;
    const waiting = [];
    for (const activity of this.pendingActivity) {
      if (Date.parse(activity.created_at) >= from) this.insertActivity(activity, { scroll: false });
      else waiting.push(activity);
    }
    this.pendingActivity = waiting;
  }

  insertActivity(activity, { scroll = true } = {}) {
    if (activity.conversation_id !== this.id) return;
    if (this.messages.querySelector(`[data-activity-id="${activity.id}"]`)) return;
    const atBottom = this.isAtBottom();
    const node = renderActivity(activity);
    const undo = undoButton(activity, { toast: this.actions.toast });
    if (undo && !this.messages.querySelector(`.activity-line[data-undone-merge="${activity.after.merge_id}"]`)) node.append(" ", undo);
    if (activity.verb === "unmerged") {
      // The merge this undoes can no longer be undone: its button goes.
      node.dataset.undoneMerge = (activity.after || {}).merge_id;
      this.messages.querySelector(`.undo-merge[data-merge-id="${node.dataset.undoneMerge}"]`)?.remove();
    }
    this.insertNode(node, activity.created_at);
    if (scroll && atBottom) this.scrollToBottom();
  }

  async reload() {
    if (!this.id) return;
    const id = this.id;
    try {
      const data = await api.open(id);
      if (id === this.id) this.show(data);
    } catch (error) {
      if (error.status !== 404 || id !== this.id) throw error;
      this.close(); // the user may no longer see it (their teams or channels changed)
    }
  }

  close() {
    this.clear();
    this.labelsBox.hidden = true;
    this.id = this.conversation = this.cursor = this.newerCursor = null;
    this.openToken = Symbol(); // an open still in flight is not shown either
    this.root.classList.remove("loading");
    this.root.classList.add("empty");
  }

  async loadOlder() {
    if (!this.cursor || this.loadingOlder || !this.id) return;
    this.loadingOlder = true;
    this.messages.setAttribute("aria-busy", "true");
    const shown = this.shown;
    try {
      const page = await api.olderMessages(this.id, this.cursor);
      if (shown !== this.shown) return; // the thread was opened or reloaded meanwhile
      const box = this.messages;
      // Keep what the reader looks at in place: the oldest message shown stays where it is.
      const anchor = box.firstElementChild;
      const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
      const fragment = document.createDocumentFragment();
      for (const message of [...page.results].reverse()) {
        if (this.byId.has(message.id)) continue;
        fragment.append(this.node(message));
      }
      box.prepend(fragment);
      this.cursor = page.next_cursor;
      this.placePendingActivity();
      if (anchor) box.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
    } finally {
      this.loadingOlder = false;
      this.messages.removeAttribute("aria-busy");
    }
  }

  node(message) {
    const node = renderMessage(message, this.actions);
    if (message.id != null && this.actions.split && !message.is_deleted) {
      node.querySelector(".meta")?.append(splitButton(message, { split: (m) => this.actions.split(this.id, m) }));
    }
    if (message.id != null) this.byId.set(message.id, node);
    if (message.client_id) this.byClient.set(message.client_id, node);
    return node;
  }

  // A message from the server (event or response) or an optimistic one (id null, client_id).
  upsertMessage(message) {
    if (message.conversation_id !== this.id) return;
    const existing = (message.id != null && this.byId.get(message.id)) || (message.client_id && this.byClient.get(message.client_id));
    if (existing && existing.dataset.id && message.id == null) return; // the server's copy is already shown
    if (existing && existing.dataset.id && !isNewer(message, existing)) return;
    // Newer pages are not loaded yet (opened around a search hit): it comes with them. The
    // manager's own optimistic reply still shows at once.
    if (!existing && this.newerCursor && message.id != null) return;
    const atBottom = this.isAtBottom();
    const node = this.node(message);
    if (existing) existing.replaceWith(node);
    else this.insertNode(node, message.created_at);
    if (atBottom || (!existing && message.direction === "out")) this.scrollToBottom();
  }

  insert(message) {
    this.messages.append(this.node(message));
  }

  insertNode(node, createdAt) {
    let after = this.messages.lastElementChild;
    const at = Date.parse(createdAt);
    while (after && Date.parse(after.dataset.created) > at) after = after.previousElementSibling;
    if (after) after.after(node);
    else this.messages.prepend(node);
  }

  isAtBottom() {
    const box = this.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  scrollToBottom() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  applyConversation(conversation) {
    if (conversation.id !== this.id) return;
    if (this.conversation && this.conversation.id === conversation.id && olderThan(conversation, this.conversation)) return;
    this.conversation = { ...(this.conversation && this.conversation.id === conversation.id ? this.conversation : {}), ...conversation };
    this.renderHeader(this.conversation);
    this.renderLabels(this.conversation);
  }

  // --- labels: chips with ×, and a field that suggests labels as you type -------------------
  setUpLabels() {
    this.labelChips = el("span", { class: "label-chips" });
    this.labelInput = el("input", {
      type: "text",
      class: "label-input",
      name: "add-label",
      placeholder: "+ Label",
      "aria-label": "Add a label",
      autocomplete: "off",
    });
    const wrap = el("span", { class: "label-add" }, this.labelInput);
    this.labelsBox.replaceChildren(this.labelChips, wrap);
    this.labelSuggest = new Suggest({
      field: this.labelInput,
      container: wrap,
      label: "Labels",
      onPick: (value) => this.addLabel(value),
    });
    const suggest = () => {
      const query = this.labelInput.value.trim();
      const present = new Set(((this.conversation || {}).labels || []).map((l) => l.id));
      const matches = rank(this.labelCatalog.filter((l) => !present.has(l.id)), query, (l) => [l.name]).slice(0, 8);
      const items = matches.map((l) => ({ key: `l${l.id}`, text: l.name, value: l }));
      if (query && !this.labelCatalog.some((l) => l.name.toLowerCase() === query.toLowerCase())) {
        items.push({ key: "new", text: `Create “${query}”`, hint: "new label", value: { create: query } });
      }
      this.labelSuggest.show(items);
    };
    this.labelInput.addEventListener("input", suggest);
    this.labelInput.addEventListener("focus", suggest);
    this.labelInput.addEventListener("keydown", (event) => {
      if (this.labelSuggest.handleKey(event)) return;
      if (event.key === "Escape") this.labelInput.blur();
    });
  }

  renderLabels(conversation) {
    this.labelsBox.hidden = false;
    if (!conversation.labels) return; // a payload without labels: they did not change
    this.labelChips.replaceChildren(...conversation.labels.map((label) => labelChip(label, (l) => this.changeLabels({ remove: [l.id] }))));
  }

  async addLabel(value) {
    this.labelInput.value = "";
    let label = value;
    try {
      if (value.create) {
        label = await api.createLabel({ name: value.create });
        if (!this.labelCatalog.some((l) => l.id === label.id)) this.labelCatalog.push(label);
        this.labelCatalog.sort((a, b) => a.name.localeCompare(b.name));
        this.actions.labelsChanged?.();
      }
    } catch (error) {
      this.actions.toast(`Could not create the label: ${error.detail || error.message}`);
      return;
    }
    await this.changeLabels({ add: [label.id] });
  }

  async changeLabels(body) {
    const id = this.id;
    try {
      const conversation = await api.changeLabels(id, body);
      this.actions.applyConversation(conversation);
    } catch (error) {
      this.actions.toast(`Could not change the labels: ${error.detail || error.message}`);
    }
  }

  renderHeader(conversation) {
    // Only what the header shows: a new message or a read receipt leaves it (and an open menu) be.
    // Of the contact only its name and picture: an event's contact lacks the card's labels and
    // attributes, and comparing the whole object re-rendered the header (closing an open menu)
    // at the first event after the thread opened.
    const shown = JSON.stringify([conversation.id, conversation.status, conversation.snoozed_until, conversation.merged_into_id,
      conversation.assignee, conversation.team_id, conversation.subject,
      contactName(conversation.contact), conversation.contact.avatar_url || null, conversation.channel]);
    if (shown === this.headerShown && this.header.isConnected && this.header.childElementCount) return;
    this.headerShown = shown;
    const name = contactName(conversation.contact);
    // A re-render (an event, the answer to an action) keeps the keyboard where it was.
    const focused = this.header.contains(document.activeElement)
      ? [...document.activeElement.classList].find((c) => c.endsWith("-action"))
      : null;
    if (this.header.querySelector(".popover")) closePopover({ focus: false });
    this.header.replaceChildren(
      avatar(name, "large", conversation.contact.avatar_url),
      el(
        "div",
        { class: "head-main" },
        el("h2", { class: "head-name", text: name, title: name }),
        el("div", { class: "head-sub" }, channelTag(conversation.channel),
          conversation.subject ? el("span", { class: "head-subject", text: conversation.subject }) : null),
      ),
      renderActions(conversation, {
        me: this.me,
        managers: this.managers,
        teams: this.teams,
        change: (changes) => this.change(changes),
        merge: conversation.merged_into_id
          ? null
          : mergeButton(conversation, { toast: this.actions.toast, merged: (result) => this.actions.merged?.(result) }),
      }),
    );
    if (focused) this.header.querySelector(`.${focused}`)?.focus();
  }

  async change(changes) {
    try {
      const conversation = await this.actions.updateConversation(this.id, changes);
      this.applyConversation(conversation);
    } catch (error) {
      this.renderHeader(this.conversation);
      this.actions.toast(`Could not update the conversation: ${error.detail || error.message}`);
    }
  }

  // A contact.updated event: the open thread's header and card show the new name or picture.
  patchContact(contact) {
    if (!this.conversation || !this.conversation.contact || this.conversation.contact.id !== contact.id) return;
    this.conversation = { ...this.conversation, contact: { ...this.conversation.contact, ...contact } };
    this.renderHeader(this.conversation);
    if (this.cardContact && this.cardContact.id === contact.id) this.renderCard({ ...this.cardContact, ...contact });
  }

  renderCard(contact) {
    this.cardContact = contact;
    const name = contactName(contact);
    const details = [
      ["Phone", contact.phone, contact.phone ? `tel:${contact.phone}` : null],
      ["Email", contact.email, contact.email ? `mailto:${contact.email}` : null],
      ["Username", contact.username, null],
    ].filter(([, value]) => value);
    const orders = contact.orders || [];
    const setAttributes = (contact.custom_attributes || []).filter((a) => a.value !== null && a.value !== "");
    const parts = [
      el("div", { class: "card-head" }, avatar(name, "large", contact.avatar_url), el("h3", { text: name })),
      el(
        "dl",
        { class: "details" },
        ...details.flatMap(([label, value, href]) => [
          el("dt", { text: label }),
          el("dd", {}, href ? el("a", { href, text: value }) : value),
        ]),
      ),
      (contact.labels || []).length ? el("div", { class: "card-labels" }, ...contact.labels.map((label) => labelChip(label))) : null,
      contact.notes ? el("p", { class: "contact-notes", text: contact.notes }) : null,
      // The custom attributes that have a value (typed, edited on the contact page).
      setAttributes.length
        ? el(
            "dl",
            { class: "details card-attributes" },
            ...setAttributes.flatMap((attribute) => [
              el("dt", { text: attribute.name }),
              el("dd", { dataset: { attribute: attribute.key }, text: String(attribute.value) }),
            ]),
          )
        : null,
      el("a", { class: "contact-page-link", href: `/contacts/${contact.id}/` }, "Open the contact page"),
      el("h4", { text: `Orders (${orders.length})` }),
      orders.length
        ? el(
            "ul",
            { class: "orders" },
            ...orders.map((order) =>
              el(
                "li",
                { class: "order" },
                el("div", { class: "order-top" }, el("span", { class: "order-number", text: order.number }),
                  el("span", { class: `pill order-${order.status}`, text: order.status })),
                el("div", { class: "order-title", text: order.title }),
                el("div", { class: "order-bottom" }, el("span", { text: `${order.amount} ${order.currency}` }),
                  el("time", { datetime: order.ordered_at, text: shortTime(order.ordered_at) })),
              ),
            ),
          )
        : el("p", { class: "muted", text: "No orders yet." }),
    ];
    parts.splice(4, 0, duplicatesSection(contact, { toast: this.actions.toast, merged: () => this.reload() }));
    this.card.replaceChildren(...parts.filter(Boolean));
  }

  // typing / viewing notices from other managers, and the customer's typing (`customer`,
  // `typing` false when they stop), on this conversation
  showPresence(event) {
    const data = event.data || {};
    if (data.conversation_id !== this.id) return;
    const key = `${event.type}:${data.customer ? "customer" : data.user_id}`;
    clearTimeout(this.presenceTimers.get(key));
    let node = this.presence.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (data.typing === false) {
      if (node) node.remove();
      return;
    }
    const text = event.type === "typing" ? `${data.user_name} is typing…` : `${data.user_name} is viewing this conversation`;
    if (!node) {
      node = el("span", { class: `presence-item ${event.type}`, dataset: { key } });
      this.presence.append(node);
    }
    node.textContent = text;
    const ttl = event.type !== "typing" ? 45000 : data.customer ? 30000 : 5000;
    this.presenceTimers.set(key, setTimeout(() => node.remove(), ttl));
  }
}

function isNewer(message, node) {
  // The row's version decides; the time and status rank only for copies without one.
  if (message.version != null && node.dataset.version) return message.version >= Number(node.dataset.version);
  const updated = node.dataset.updated || "";
  if (message.updated_at && updated && Date.parse(message.updated_at) < Date.parse(updated)) return false;
  const current = node.className.match(/status-(\w+)/);
  if (current && message.updated_at === updated && STATUS_RANK[message.status] < STATUS_RANK[current[1]]) return false;
  return true;
}
