// The one search box: words of any message or email subject, names, phones, emails, over all
// history. Results replace the list while a query is typed, grouped (conversations, messages
// with the hit in context, contacts); each group pages on its own ("More").

import { api } from "./api.js";
import { avatar, channelTag, contactName, el, shortTime } from "./render.js";

const GROUPS = [
  ["messages", "Messages"],
  ["conversations", "Conversations"],
  ["contacts", "Contacts"],
];

// The server's highlight is escaped text (Python's html.escape: these five entities) with
// <mark> around hits; it is rebuilt here from text nodes, so no customer text is ever parsed
// as HTML.
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };
const unescape = (text) => text.replace(/&(amp|lt|gt|quot|#x27);/g, (entity) => ENTITIES[entity]);
function highlighted(html) {
  const node = el("div", { class: "hit-snippet" });
  let inMark = false;
  for (const part of html.split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") inMark = true;
    else if (part === "</mark>") inMark = false;
    else if (part) {
      const text = unescape(part);
      node.append(inMark ? el("mark", { text }) : document.createTextNode(text));
    }
  }
  return node;
}

export class Search {
  constructor({ root, listScroll, onOpen, toast }) {
    Object.assign(this, { root, listScroll, onOpen, toast });
    this.query = "";
    this.filters = {};
    // Results are focusable: Enter opens the focused one, as a click does.
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.classList.contains("search-hit")) event.target.click();
    });
  }

  get active() {
    return this.query !== "";
  }

  async run(query, filters) {
    this.query = query.trim();
    this.filters = filters;
    const token = (this.token = Symbol());
    if (!this.active) {
      this.root.hidden = true;
      this.root.replaceChildren();
      this.listScroll.hidden = false;
      return;
    }
    this.root.hidden = false;
    this.listScroll.hidden = true;
    this.root.setAttribute("aria-busy", "true");
    let body;
    try {
      body = await api.search({ ...filters, q: this.query });
    } catch (error) {
      if (token !== this.token) return;
      this.root.removeAttribute("aria-busy");
      this.root.replaceChildren(el("p", { class: "search-error", role: "alert", text: error.detail || error.message }));
      return;
    }
    if (token !== this.token) return; // a newer query won
    this.root.removeAttribute("aria-busy");
    this.render(body);
  }

  render(body) {
    this.root.replaceChildren();
    let any = false;
    for (const [group, title] of GROUPS) {
      const page = body[group];
      if (!page || page.results.length === 0) continue;
      any = true;
      const list = el("ul", { class: "search-list", dataset: { group } });
      for (const item of page.results) list.append(this.item(group, item));
      const section = el("section", { class: "search-group", dataset: { group } }, el("h3", { text: title }), list);
      if (page.next_cursor) section.append(this.moreButton(group, page.next_cursor, list));
      this.root.append(section);
    }
    if (!any) this.root.append(el("p", { class: "list-empty", text: `Nothing found for “${this.query}”.` }));
  }

  moreButton(group, cursor, list) {
    const button = el("button", {
      type: "button",
      class: "search-more",
      text: "More",
      onclick: async () => {
        button.disabled = true;
        try {
          const body = await api.search({ ...this.filters, q: this.query, type: group, cursor });
          const page = body[group];
          for (const item of page.results) list.append(this.item(group, item));
          if (page.next_cursor) button.replaceWith(this.moreButton(group, page.next_cursor, list));
          else button.remove();
        } catch (error) {
          button.disabled = false;
          this.toast(`Could not load more results: ${error.detail || error.message}`);
        }
      },
    });
    return button;
  }

  item(group, item) {
    if (group === "messages") {
      return el(
        "li",
        {
          class: "search-hit message-hit",
          tabindex: "0",
          dataset: { messageId: item.id, conversationId: item.conversation_id },
          onclick: () => this.onOpen(item.conversation_id, { around: item.id }),
        },
        el(
          "div",
          { class: "row-top" },
          el("span", { class: "row-name", text: item.contact_name || "Unknown" }),
          el("time", { class: "row-time", datetime: item.created_at, text: shortTime(item.created_at) }),
        ),
        highlighted(item.highlight_html),
        el("div", { class: "row-tags" }, channelTag(item.channel), item.subject ? el("span", { class: "tag", text: item.subject }) : null),
      );
    }
    if (group === "conversations") {
      const name = contactName(item.contact);
      return el(
        "li",
        { class: "search-hit", tabindex: "0", dataset: { conversationId: item.id }, onclick: () => this.onOpen(item.id) },
        avatar(name),
        el(
          "div",
          { class: "row-main" },
          el("div", { class: "row-top" }, el("span", { class: "row-name", text: name }), el("time", { class: "row-time", text: shortTime(item.last_message_at) })),
          el("div", { class: "row-preview", text: item.last_message_preview || item.subject || "" }),
          el("div", { class: "row-tags" }, channelTag(item.channel), item.status !== "open" ? el("span", { class: `tag status-${item.status}`, text: item.status }) : null),
        ),
      );
    }
    const name = contactName(item);
    return el(
      "li",
      {
        class: "search-hit",
        tabindex: "0",
        dataset: { contactId: item.id },
        onclick: () => item.latest_conversation_id && this.onOpen(item.latest_conversation_id),
      },
      avatar(name),
      el(
        "div",
        { class: "row-main" },
        el("div", { class: "row-name", text: name }),
        el("div", { class: "row-preview", text: [item.phone, item.email, item.username && `@${item.username}`].filter(Boolean).join(" · ") }),
      ),
    );
  }
}
