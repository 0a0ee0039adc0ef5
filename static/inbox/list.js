// The conversation list: cursor pages on scroll, filters, and per-row patches from events.

import { api } from "./api.js";
import { avatar, channelTag, contactName, el, labelChip, olderThan, shortTime } from "./render.js";

// Newest activity first, id as the tie-breaker: the order of the server's cursor, to the
// microsecond (Date.parse stops at milliseconds).
const micros = (iso) => Number(((iso.match(/\.(\d+)/) || [])[1] || "").padEnd(6, "0").slice(0, 6));
const moment = (iso) => Date.parse(iso) * 1000 + (micros(iso) % 1000);
const ORDER = (a, b) => moment(b.last_message_at) - moment(a.last_message_at) || b.id - a.id;

export class ConversationList {
  constructor({ root, sentinel, me, filters, onSelect }) {
    this.root = root;
    this.me = me;
    this.filters = { ...filters };
    this.onSelect = onSelect;
    this.rows = new Map(); // id -> { data, node }
    this.cursor = null;
    this.loading = false;
    this.selectedId = null;
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    }, { root: root.parentElement, rootMargin: "400px" }).observe(sentinel);
  }

  show(conversations, cursor) {
    this.root.replaceChildren();
    this.rows.clear();
    this.cursor = cursor;
    for (const conversation of conversations) this.append(conversation);
    this.renderEmpty();
    this.updateTabStop();
  }

  async reload() {
    const token = (this.reloadToken = Symbol());
    const page = await api.conversations(this.filters);
    if (token !== this.reloadToken) return; // a newer filter change won
    this.show(page.results, page.next_cursor);
    if (this.selectedId) this.markSelected(this.selectedId);
  }

  async loadMore() {
    if (!this.cursor || this.loading) return;
    this.loading = true;
    try {
      const page = await api.conversations({ ...this.filters, cursor: this.cursor });
      for (const conversation of page.results) if (!this.rows.has(conversation.id)) this.append(conversation);
      this.cursor = page.next_cursor;
    } finally {
      this.loading = false;
    }
  }

  setFilters(filters) {
    this.filters = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== "" && v != null));
    return this.reload();
  }

  append(conversation) {
    const node = this.renderRow(conversation);
    this.rows.set(conversation.id, { data: conversation, node });
    this.root.append(node);
  }

  // A conversation.created / conversation.updated event, or an API response.
  upsert(conversation) {
    const existing = this.rows.get(conversation.id);
    if (existing && olderThan(conversation, existing.data)) return; // an older copy arrived late
    if (!this.matches(conversation) && conversation.id !== this.selectedId) {
      if (existing) {
        existing.node.remove();
        this.rows.delete(conversation.id);
        this.renderEmpty();
        this.updateTabStop();
      }
      return;
    }
    const merged = existing ? { ...existing.data, ...conversation } : conversation;
    const node = this.renderRow(merged);
    const hadFocus = existing && existing.node === document.activeElement;
    if (existing) existing.node.replaceWith(node);
    if (hadFocus) node.focus({ preventScroll: true });
    this.rows.set(conversation.id, { data: merged, node });
    // A row moves only when its activity time changed (or it is new): reading, assigning or
    // resolving a conversation leaves it where the manager saw it.
    if (!existing || existing.data.last_message_at !== merged.last_message_at) this.place(merged, node);
    this.renderEmpty();
    this.updateTabStop();
  }

  // One tab stop for the whole list (the selected row, else the first): Tab reaches the list,
  // the arrow keys move within it (main.js), Enter opens a row.
  updateTabStop() {
    const stop = this.rows.get(this.selectedId)?.node || this.root.querySelector(".row");
    for (const node of this.root.querySelectorAll('.row[tabindex="0"]')) if (node !== stop) node.tabIndex = -1;
    if (stop) stop.tabIndex = 0;
  }

  // A contact.updated event (a new name or picture from the platform): every row of that
  // contact shows it, in place.
  patchContact(contact) {
    for (const [id, row] of this.rows) {
      if (!row.data.contact || row.data.contact.id !== contact.id) continue;
      const merged = { ...row.data, contact: { ...row.data.contact, ...contact } };
      const node = this.renderRow(merged);
      row.node.replaceWith(node);
      this.rows.set(id, { data: merged, node });
    }
  }

  // Keep rows in (last_message_at, id) descending order, walking them in the order shown;
  // a row that belongs below the loaded pages waits until that page is loaded.
  place(conversation, node) {
    let before = null;
    for (const child of this.root.children) {
      const row = child === node ? null : this.rows.get(Number(child.dataset.id));
      if (row && ORDER(conversation, row.data) < 0) {
        before = child;
        break;
      }
    }
    if (before) {
      if (node.nextSibling !== before) this.root.insertBefore(node, before);
    } else if (!this.cursor || this.rows.size <= 1) {
      if (this.root.lastElementChild !== node) this.root.append(node);
    } else {
      node.remove();
      this.rows.delete(conversation.id);
    }
  }

  matches(conversation) {
    const f = this.filters;
    if (conversation.is_archived) return false;
    if (f.status && conversation.status !== f.status) return false;
    if (f.channel && String(conversation.channel.id) !== String(f.channel)) return false;
    const assignee = conversation.assignee ? conversation.assignee.id : null;
    if (f.assignee === "me" && assignee !== this.me.id) return false;
    if (f.assignee === "none" && assignee !== null) return false;
    if (f.assignee && !["me", "none"].includes(f.assignee) && String(assignee) !== String(f.assignee)) return false;
    if (f.unread && !conversation.unread_count) return false;
    if (f.label) {
      const labels = conversation.labels || (this.rows.get(conversation.id) || {}).data?.labels;
      if (!labels || !labels.some((label) => String(label.id) === String(f.label))) return false;
    }
    if (f.q && !this.rows.has(conversation.id)) return false; // the server decides what matches a search
    return true;
  }

  renderRow(conversation) {
    const name = contactName(conversation.contact);
    const unread = conversation.unread_count > 0;
    const node = el(
      "li",
      {
        class: `row${unread ? " unread" : ""}${conversation.id === this.selectedId ? " selected" : ""}`,
        role: "option",
        tabindex: "-1",
        "aria-selected": conversation.id === this.selectedId ? "true" : "false",
        dataset: { id: conversation.id },
        onclick: () => this.onSelect(conversation.id),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            this.onSelect(conversation.id);
          }
        },
      },
      avatar(name, "", conversation.contact.avatar_url),
      el(
        "div",
        { class: "row-main" },
        el(
          "div",
          { class: "row-top" },
          el("span", { class: "row-name", text: name }),
          el("time", { class: "row-time", datetime: conversation.last_message_at, text: shortTime(conversation.last_message_at) }),
        ),
        el(
          "div",
          { class: "row-bottom" },
          el("span", { class: "row-preview", text: conversation.last_message_preview || conversation.subject || "" }),
          unread ? el("span", { class: "badge", "aria-label": `${conversation.unread_count} unread`, text: conversation.unread_count }) : null,
        ),
        el(
          "div",
          { class: "row-tags" },
          channelTag(conversation.channel),
          conversation.status !== "open" ? el("span", { class: `tag status-${conversation.status}`, text: conversation.status }) : null,
          conversation.assignee ? el("span", { class: "tag assignee", text: `@ ${conversation.assignee.name}` }) : null,
          ...(conversation.labels || []).map((label) => labelChip(label)),
        ),
      ),
    );
    this.decorateRow?.(node, conversation); // bulk.js: the row's selection checkbox
    return node;
  }

  renderEmpty() {
    const empty = this.root.querySelector(".list-empty");
    if (this.rows.size === 0 && !empty) {
      this.root.append(el("li", { class: "list-empty", text: "No conversations match these filters." }));
    } else if (this.rows.size > 0 && empty) {
      empty.remove();
    }
  }

  markSelected(id) {
    const focusInList = this.root.contains(document.activeElement);
    this.selectedId = id;
    for (const [rowId, row] of this.rows) {
      const selected = rowId === id;
      row.node.classList.toggle("selected", selected);
      row.node.setAttribute("aria-selected", selected ? "true" : "false");
    }
    this.updateTabStop();
    const row = this.rows.get(id);
    if (row) {
      row.node.scrollIntoView({ block: "nearest" });
      if (focusInList) row.node.focus({ preventScroll: true }); // arrow keys: the focus follows
    }
  }

  neighbour(step) {
    const ids = [...this.root.querySelectorAll(".row")].map((node) => Number(node.dataset.id));
    if (ids.length === 0) return null;
    const index = ids.indexOf(this.selectedId);
    if (index === -1) return ids[0];
    return ids[Math.min(ids.length - 1, Math.max(0, index + step))];
  }

  get(id) {
    const row = this.rows.get(id);
    return row ? row.data : null;
  }
}
