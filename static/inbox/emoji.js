// The emoji picker: emoji-picker-element (static/vendor/README.md), loaded the first time it is
// opened, with its emoji data served from our own static files (no CDN). Picking an emoji
// inserts it at the caret.

const STATIC = new URL("../", import.meta.url); // .../static/
const DATA = new URL("vendor/emoji-picker-element-data/en/emojibase/data.json", STATIC).href;

export class EmojiPicker {
  constructor({ toggle, box, onPick }) {
    Object.assign(this, { toggle, box, onPick });
    this.picker = null;
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", () => (box.hidden ? this.open() : this.close()));
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        this.close();
        toggle.focus();
      }
    });
  }

  async open() {
    if (!this.picker) {
      const { default: Picker } = await import(new URL("vendor/emoji-picker-element/picker.js", STATIC).href);
      this.picker = new Picker({ dataSource: DATA, locale: "en" });
      this.picker.addEventListener("emoji-click", (event) => this.onPick(event.detail.unicode));
      this.box.append(this.picker);
    }
    this.box.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    this.picker.shadowRoot.querySelector("input")?.focus();
  }

  close() {
    this.box.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
  }
}
