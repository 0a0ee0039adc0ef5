// "Mentions": the notes that name me, unread first; a badge in the top bar that moves live
// (`mention.created`, `mentions.read` from any of my tabs).

import { api } from "./api.js";
import { el, fullTime, shortTime } from "./render.js";

export class Mentions {
  constructor({ button, panel, unread, onOpen, toast }) {
    Object.assign(this, { button, panel, onOpen, toast });
    this.badge = button.querySelector(".mention-count");
    this.setUnread(unread);
    button.addEventListener("click", () => (this.panel.hidden ? this.show() : this.hide()));
  }

  setUnread(count) {
    this.unread = Math.max(0, count);
    this.badge.textContent = this.unread ? String(this.unread) : "";
    this.badge.hidden = !this.unread;
    this.button.setAttribute("aria-label", `Mentions, ${this.unread} unread`);
  }

  // A realtime event for this user.
  apply(event) {
    if (event.type === "mention.created") {
      this.setUnread(this.unread + 1);
      if (!this.panel.hidden) this.show();
    } else if (event.type === "mentions.read") {
      if (!this.panel.hidden) this.show();
      else this.refreshCount();
    }
  }

  async refreshCount() {
    try {
      this.setUnread((await api.mentions({ page_size: 1 })).unread_count);
    } catch {
      /* the next event corrects it */
    }
  }

  hide() {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }

  async show() {
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    let page;
    try {
      page = await api.mentions({ page_size: 50 });
    } catch (error) {
      this.toast(`Could not load mentions: ${error.detail || error.message}`);
      return;
    }
    this.setUnread(page.unread_count);
    const items = page.results.map((mention) =>
      el(
        "li",
        {
          class: `mention-item${mention.read_at ? "" : " unread"}`,
          dataset: { mentionId: mention.id },
          tabindex: "0",
          onclick: () => this.open(mention),
          onkeydown: (event) => event.key === "Enter" && this.open(mention),
        },
        el(
          "div",
          { class: "mention-top" },
          el("strong", { text: mention.conversation.contact_name || `Conversation #${mention.conversation.id}` }),
          el("time", { datetime: mention.created_at, title: fullTime(mention.created_at), text: shortTime(mention.created_at) }),
        ),
        el("div", { class: "mention-who muted", text: `${mention.message.sender_name} wrote:` }),
        el("div", { class: "mention-text", text: mention.message.content }),
      ),
    );
    this.panel.replaceChildren(
      el(
        "div",
        { class: "mentions-head" },
        el("h3", { text: "Mentions" }),
        el("button", { type: "button", class: "button small ghost", text: "Mark all read", disabled: !page.unread_count, onclick: () => this.markRead({}) }),
      ),
      items.length ? el("ul", { class: "mention-list" }, ...items) : el("p", { class: "muted", text: "Nobody has mentioned you yet." }),
    );
  }

  async open(mention) {
    this.hide();
    this.onOpen(mention.conversation.id);
    if (!mention.read_at) await this.markRead({ ids: [mention.id] });
  }

  async markRead(body) {
    try {
      const result = await api.markMentionsRead(body);
      this.setUnread(result.unread_count);
      if (!this.panel.hidden) this.show();
    } catch (error) {
      this.toast(`Could not mark mentions read: ${error.detail || error.message}`);
    }
  }
}
