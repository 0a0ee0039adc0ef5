// A small menu that opens under its button: Escape or a click outside closes it and gives the
// focus back to the button. It floats over the header (position: absolute), so opening it
// never squeezes the customer's name.

import { el } from "./render.js";

let openOne = null; // at most one popover is open on the page

export function closePopover({ focus = true } = {}) {
  if (!openOne) return;
  const { node, button } = openOne;
  openOne = null;
  node.remove();
  button.setAttribute("aria-expanded", "false");
  if (focus && button.isConnected) button.focus();
}

document.addEventListener("mousedown", (event) => {
  if (openOne && !openOne.node.contains(event.target) && !openOne.button.contains(event.target)) {
    closePopover({ focus: false });
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && openOne) {
    event.stopPropagation();
    closePopover();
  }
}, true);

// A button that opens `build()` (an element) in a popover below it.
export function popoverButton({ label, text, className = "button small", build }) {
  const button = el("button", {
    type: "button",
    class: className,
    "aria-haspopup": "true",
    "aria-expanded": "false",
    "aria-label": label,
    title: label,
  }, text);
  button.addEventListener("click", () => {
    const wasMine = openOne && openOne.button === button;
    closePopover({ focus: false });
    if (wasMine) return;
    const node = el("div", { class: "popover", role: "dialog", "aria-label": label }, build());
    button.parentElement.append(node);
    const box = button.getBoundingClientRect();
    const parent = button.parentElement.getBoundingClientRect();
    // Right-aligned with the button (on phones: the screen's width, under it). CSSOM writes:
    // the page's CSP allows them.
    if (getComputedStyle(node).position === "fixed") {
      node.style.top = `${box.bottom + 4}px`;
    } else {
      node.style.top = `${box.bottom - parent.top + 4}px`;
      node.style.right = `${Math.max(0, parent.right - box.right)}px`;
    }
    openOne = { node, button };
    button.setAttribute("aria-expanded", "true");
    const first = node.querySelector("input, button, [tabindex]");
    if (first) first.focus();
  });
  return button;
}

let listCount = 0;

// A type-ahead list: an input filtering `options` ({value, label, hint?}), arrow keys move,
// Enter or a click picks one (`onPick(value)`).
export function typeAhead({ label, options, current, onPick }) {
  const id = `typeahead-${++listCount}`;
  const input = el("input", {
    type: "text",
    class: "typeahead-input",
    role: "combobox",
    "aria-label": label,
    "aria-autocomplete": "list",
    "aria-expanded": "true",
    "aria-controls": id,
    autocomplete: "off",
    placeholder: "Type a name…",
  });
  const list = el("ul", { class: "typeahead-list", role: "listbox", id, "aria-label": label });
  let shown = [];
  let active = 0;
  const pick = (option) => {
    closePopover();
    onPick(option.value);
  };
  const render = () => {
    const query = input.value.trim().toLocaleLowerCase();
    shown = options.filter((o) => !query || o.label.toLocaleLowerCase().includes(query));
    active = Math.min(active, Math.max(0, shown.length - 1));
    list.replaceChildren(
      ...shown.map((option, index) =>
        el(
          "li",
          {
            id: `${id}-${index}`,
            role: "option",
            class: `typeahead-option${index === active ? " active" : ""}`,
            "aria-selected": index === active ? "true" : "false",
            dataset: { value: option.value ?? "" },
            onmousedown: (event) => event.preventDefault(),
            onclick: () => pick(option),
          },
          option.label,
          option.value === current
            ? [el("span", { class: "typeahead-current", "aria-hidden": "true", text: " ✓" }), el("span", { class: "sr-only", text: " (current)" })]
            : null,
        ),
      ),
    );
    if (!shown.length) list.append(el("li", { class: "typeahead-empty", role: "presentation", text: "No match" }));
    if (shown.length) input.setAttribute("aria-activedescendant", `${id}-${active}`);
    else input.removeAttribute("aria-activedescendant");
  };
  input.addEventListener("input", () => {
    active = 0;
    render();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + shown.length) % Math.max(1, shown.length);
      render();
      list.children[active]?.scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (shown[active]) pick(shown[active]);
    }
  });
  render();
  return el("div", { class: "typeahead" }, input, list);
}
