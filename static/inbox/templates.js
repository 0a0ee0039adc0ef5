// The template picker: where free text cannot be sent (WhatsApp, once the customer's 24-hour
// window has closed), the manager picks an approved template, fills its variables in and
// sees the message as it will arrive.

import { api } from "./api.js";
import { el } from "./render.js";

const VARIABLE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

export class TemplatePicker {
  constructor(root, { onSend }) {
    this.root = root;
    this.onSend = onSend;
    this.conversationId = null;
    this.templates = [];
  }

  hide() {
    this.conversationId = null;
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  async show(conversationId) {
    this.conversationId = conversationId;
    this.root.hidden = false;
    this.root.replaceChildren(el("p", { class: "muted", text: "Loading templates…" }));
    let templates;
    try {
      templates = (await api.templates(conversationId)).results;
    } catch (error) {
      if (this.conversationId === conversationId) {
        this.root.replaceChildren(el("p", { class: "composer-error", text: `Templates could not be loaded: ${error.detail || error.message}` }));
      }
      return;
    }
    if (this.conversationId !== conversationId) return; // another conversation opened meanwhile
    this.templates = templates;
    if (!templates.length) {
      this.root.replaceChildren(el("p", { class: "muted", text: "No approved templates: an admin syncs them from WhatsApp (manage.py whatsapp_sync_templates)." }));
      return;
    }
    const select = el(
      "select",
      { class: "template-select", "aria-label": "Template", onchange: () => this.choose(select.value) },
      el("option", { value: "", text: "Choose an approved template…" }),
      templates.map((t) => el("option", { value: String(t.id), text: `${t.name} (${t.language})` })),
    );
    this.form = el("div", { class: "template-form" });
    this.root.replaceChildren(el("label", { class: "template-choice" }, "Template ", select), this.form);
  }

  choose(id) {
    const template = this.templates.find((t) => String(t.id) === id);
    this.form.replaceChildren();
    if (!template) return;
    const preview = el("div", { class: "template-preview", "aria-label": "Preview" });
    const inputs = template.fields.map((field) =>
      el("input", { type: "text", required: true, dataset: { key: field.key }, "aria-label": field.label, placeholder: field.label, oninput: () => update() }),
    );
    const send = el("button", { type: "button", class: "button primary template-send", text: "Send template" });
    const values = () => Object.fromEntries(inputs.map((input) => [input.dataset.key, input.value]));
    const update = () => {
      const filled = values();
      const fill = (text, prefix) => text.replace(VARIABLE, (all, name) => filled[`${prefix}.${name}`]?.trim() || all);
      const parts = [fill(template.header, "header"), fill(template.body, "body"), template.footer].filter(Boolean);
      preview.replaceChildren(...parts.map((part) => el("p", { text: part })));
      if (template.buttons.length) preview.append(el("p", { class: "template-buttons muted", text: template.buttons.map((b) => `[${b}]`).join(" ") }));
      send.disabled = inputs.some((input) => !input.value.trim());
      return parts.join("\n\n");
    };
    send.addEventListener("click", () => {
      const content = update();
      if (send.disabled) return;
      this.onSend({ id: template.id, variables: values() }, content);
      for (const input of inputs) input.value = "";
      update();
    });
    this.form.replaceChildren(
      preview,
      el("div", { class: "template-fields" }, inputs.map((input, i) => el("label", {}, template.fields[i].label, input))),
      send,
    );
    update();
    (inputs[0] || send).focus();
  }
}
