// Managing canned replies in a small dialog: the list (personal and the teams'), add, edit,
// delete. The server checks the placeholders and says which one it does not know.

import { api } from "./api.js";
import { el } from "./render.js";

const HELP = "Placeholders: {{contact.name}} {{contact.first_name}} {{agent.name}} {{conversation.id}}";

export class CannedDialog {
  constructor({ myTeams, toast, onChange }) {
    Object.assign(this, { myTeams, toast, onChange });
    this.editing = null;
    this.dialog = el("dialog", { id: "canned-dialog", class: "canned-dialog", "aria-label": "Canned replies" });
    document.body.append(this.dialog);
  }

  async open() {
    this.render([]);
    this.dialog.showModal();
    await this.reload();
  }

  async reload() {
    try {
      this.render((await api.canned()).results);
    } catch (error) {
      this.toast(`Could not load canned replies: ${error.detail || error.message}`);
    }
  }

  render(responses) {
    const shortcut = el("input", { name: "shortcut", required: true, pattern: "[-a-zA-Z0-9_]+", placeholder: "shortcut", "aria-label": "Shortcut" });
    const title = el("input", { name: "title", placeholder: "title (optional)", "aria-label": "Title" });
    const content = el("textarea", { name: "content", rows: 4, required: true, placeholder: "Hi {{contact.first_name}}, …", "aria-label": "Text" });
    const scope = el(
      "select",
      { name: "scope", "aria-label": "Who can use it" },
      el("option", { value: "", text: "Only me" }),
      ...this.myTeams.map((team) => el("option", { value: team.id, text: `Team ${team.name}` })),
    );
    const error = el("p", { class: "canned-error", role: "alert", hidden: true });
    if (this.editing) {
      shortcut.value = this.editing.shortcut;
      title.value = this.editing.title;
      content.value = this.editing.content;
      scope.value = this.editing.team ? this.editing.team.id : "";
      scope.disabled = true;
    }
    const form = el(
      "form",
      {
        class: "canned-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const body = { shortcut: shortcut.value.trim(), title: title.value.trim(), content: content.value };
          try {
            if (this.editing) await api.updateCanned(this.editing.id, body);
            else await api.createCanned(scope.value ? { ...body, scope: "team", team_id: Number(scope.value) } : body);
          } catch (failure) {
            error.textContent = failure.detail || failure.message;
            error.hidden = false;
            return;
          }
          this.editing = null;
          this.onChange();
          await this.reload();
        },
      },
      el("div", { class: "canned-row" }, shortcut, scope),
      title,
      content,
      el("p", { class: "muted canned-help", text: HELP }),
      error,
      el(
        "div",
        { class: "canned-actions" },
        el("button", { type: "submit", class: "button primary small", text: this.editing ? "Save" : "Add" }),
        this.editing ? el("button", { type: "button", class: "button small ghost", text: "Cancel edit", onclick: () => { this.editing = null; this.reload(); } }) : null,
        el("button", { type: "button", class: "button small ghost", text: "Close", onclick: () => this.dialog.close() }),
      ),
    );
    const list = el(
      "ul",
      { class: "canned-list" },
      ...responses.map((response) =>
        el(
          "li",
          { class: "canned-item", dataset: { shortcut: response.shortcut } },
          el("div", {}, el("strong", { text: `/${response.shortcut}` }), " ", el("span", { class: "muted", text: response.team ? `team ${response.team.name}` : "personal" })),
          el("div", { class: "canned-content", text: response.content }),
          el(
            "div",
            { class: "canned-actions" },
            el("button", { type: "button", class: "button small ghost", text: "Edit", onclick: () => { this.editing = response; this.render(responses); } }),
            el("button", {
              type: "button",
              class: "button small ghost",
              text: "Delete",
              onclick: async () => {
                await api.deleteCanned(response.id).catch((failure) => this.toast(failure.detail || failure.message));
                this.onChange();
                this.reload();
              },
            }),
          ),
        ),
      ),
    );
    this.dialog.replaceChildren(
      el("h3", { text: "Canned replies" }),
      responses.length ? list : el("p", { class: "muted", text: "None yet. Type / in a reply to use them." }),
      el("h4", { text: this.editing ? `Edit /${this.editing.shortcut}` : "New canned reply" }),
      form,
    );
  }
}
