// The open conversation: header with its actions (actions.js), messages, the customer's card.

import { renderActions } from "./actions.js";
import { api } from "./api.js";
import { closePopover } from "./popover.js";
import {
  avatar,
  channelTag,
  contactName,
  el,
  olderThan,
  renderMessage,
  shortTime,
} from "./render.js";

const STATUS_RANK = { sending: 0, pending: 0, unknown: 0, sent: 1, delivered: 2, read: 3, failed: 4, received: 0 };

export class Thread {
  constructor({ root, header, messages, card, presence, me, managers, teams, actions }) {
    Object.assign(this, { root, header, messages, card, presence, me, managers, teams, actions });
    this.id = null;
    this.conversation = null;
    this.byId = new Map();
    this.byClient = new Map();
    this.cursor = null;
    this.loadingOlder = false;
    this.presenceTimers = new Map();
    this.messages.addEventListener("scroll", () => {
      if (this.messages.scrollTop < 300) this.loadOlder();
    });
  }

  async open(id) {
    this.id = id;
    const token = (this.openToken = Symbol());
    this.root.classList.add("loading");
    const data = await api.open(id);
    if (token !== this.openToken) return null; // another conversation was opened meanwhile
    this.root.classList.remove("loading", "empty");
    this.show(data);
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

  show(data) {
    this.clear();
    this.cursor = data.next_cursor;
    this.applyConversation(data.conversation);
    this.renderCard(data.conversation.contact);
    for (const message of [...data.messages].reverse()) this.insert(message);
    this.scrollToBottom();
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
    this.id = this.conversation = this.cursor = null;
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
      if (anchor) box.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
      this.cursor = page.next_cursor;
    } finally {
      this.loadingOlder = false;
      this.messages.removeAttribute("aria-busy");
    }
  }

  node(message) {
    const node = renderMessage(message, this.actions);
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
  }

  renderHeader(conversation) {
    // Only what the header shows: a new message or a read receipt leaves it (and an open menu) be.
    const shown = JSON.stringify([conversation.id, conversation.status, conversation.snoozed_until,
      conversation.assignee, conversation.team_id, conversation.subject, contactName(conversation.contact),
      conversation.channel.id, conversation.channel.name, conversation.channel.address]);
    if (shown === this.headerShown && this.header.isConnected && this.header.childElementCount) return;
    this.headerShown = shown;
    const name = contactName(conversation.contact);
    // A re-render (an event, the answer to an action) keeps the keyboard where it was.
    const focused = this.header.contains(document.activeElement)
      ? [...document.activeElement.classList].find((c) => c.endsWith("-action"))
      : null;
    if (this.header.querySelector(".popover")) closePopover({ focus: false });
    this.header.replaceChildren(
      avatar(name, "large"),
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

  renderCard(contact) {
    const name = contactName(contact);
    const details = [
      ["Phone", contact.phone, contact.phone ? `tel:${contact.phone}` : null],
      ["Email", contact.email, contact.email ? `mailto:${contact.email}` : null],
      ["Username", contact.username, null],
    ].filter(([, value]) => value);
    const orders = contact.orders || [];
    const parts = [
      el("div", { class: "card-head" }, avatar(name, "large"), el("h3", { text: name })),
      el(
        "dl",
        { class: "details" },
        ...details.flatMap(([label, value, href]) => [
          el("dt", { text: label }),
          el("dd", {}, href ? el("a", { href, text: value }) : value),
        ]),
      ),
      contact.notes ? el("p", { class: "contact-notes", text: contact.notes }) : null,
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
