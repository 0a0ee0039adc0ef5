// A short list of suggestions under a text field (labels, canned replies, @mentions): arrows
// move, Enter or Tab picks, Escape closes; a click picks without taking the focus away.

import { el } from "./render.js";

export class Suggest {
  constructor({ field, container, label, onPick }) {
    this.field = field;
    this.onPick = onPick;
    this.items = [];
    this.index = 0;
    this.box = el("ul", { class: "suggest", role: "listbox", "aria-label": label, hidden: true });
    (container || field.parentElement).append(this.box);
    field.setAttribute("aria-autocomplete", "list");
    field.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
  }

  get open() {
    return !this.box.hidden;
  }

  // items: [{ key, text, hint?, value }]
  show(items) {
    this.items = items;
    this.index = 0;
    if (!items.length) return this.hide();
    this.box.replaceChildren(
      ...items.map((item, index) =>
        el(
          "li",
          {
            class: "suggest-item",
            role: "option",
            dataset: { key: item.key },
            onmousedown: (event) => {
              event.preventDefault(); // keep the focus in the field
              this.pick(index);
            },
          },
          el("span", { class: "suggest-text", text: item.text }),
          item.hint ? el("span", { class: "suggest-hint", text: item.hint }) : null,
        ),
      ),
    );
    this.box.hidden = false;
    this.highlight();
  }

  hide() {
    this.box.hidden = true;
    this.items = [];
  }

  highlight() {
    [...this.box.children].forEach((node, index) => node.setAttribute("aria-selected", index === this.index ? "true" : "false"));
    this.box.children[this.index]?.scrollIntoView({ block: "nearest" });
  }

  pick(index = this.index) {
    const item = this.items[index];
    this.hide();
    if (item) this.onPick(item.value);
  }

  // Returns true when the key was the list's (the caller then does nothing else with it).
  handleKey(event) {
    if (!this.open) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.index = (this.index + step + this.items.length) % this.items.length;
      this.highlight();
    } else if (event.key === "Enter" || event.key === "Tab") {
      this.pick();
    } else if (event.key === "Escape") {
      this.hide();
    } else {
      return false;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    return true;
  }
}

// Matches `query` against texts: prefix matches first, then anywhere.
export function rank(items, query, texts) {
  const q = query.toLowerCase();
  const scored = [];
  for (const item of items) {
    const fields = texts(item).map((t) => (t || "").toLowerCase());
    if (!q) scored.push([0, item]);
    else if (fields.some((t) => t.startsWith(q))) scored.push([0, item]);
    else if (fields.some((t) => t.includes(q))) scored.push([1, item]);
  }
  return scored.sort((a, b) => a[0] - b[0]).map(([, item]) => item);
}
