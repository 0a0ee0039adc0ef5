// The inbox's keyboard: one table of shortcuts, active when the focus is not in a text field;
// `?` shows them all in a dialog (Esc closes it).

import { el } from "./render.js";

// A checkbox or a button keeps the shortcuts; a field you type into does not.
const TEXT_FIELD = "textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit])";
export const isTextField = (target) => Boolean(target.closest && target.closest(TEXT_FIELD));

// keys: what the dialog shows; match: the event keys that run it.
export function shortcutTable(actions) {
  return [
    { keys: ["j", "↓"], match: ["j", "ArrowDown"], text: "Next conversation", run: () => actions.move(1) },
    { keys: ["k", "↑"], match: ["k", "ArrowUp"], text: "Previous conversation", run: () => actions.move(-1) },
    { keys: ["Enter"], match: ["Enter"], text: "Open the current conversation", run: () => actions.open() },
    { keys: ["r"], match: ["r"], text: "Reply (focus the reply box)", run: () => actions.reply() },
    { keys: ["n"], match: ["n"], text: "Write a private note", run: () => actions.note() },
    { keys: ["e"], match: ["e"], text: "Resolve the open conversation", run: () => actions.resolve() },
    { keys: ["a"], match: ["a"], text: "Assign the open conversation to me", run: () => actions.assignToMe() },
    { keys: ["x"], match: ["x"], text: "Select or unselect the current row", run: () => actions.toggleRow() },
    { keys: ["/"], match: ["/"], text: "Search", run: () => actions.search() },
    { keys: ["?"], match: ["?"], text: "Show these shortcuts", run: () => help.open() },
    { keys: ["Esc"], match: [], text: "Close a dialog or leave a field", run: () => {} },
  ];
}

let help = { open() {} };

export function installShortcuts({ dialog, escape, actions }) {
  const table = shortcutTable(actions);
  help = helpDialog(dialog, table);
  for (const button of document.querySelectorAll("[data-open-shortcuts]")) button.addEventListener("click", () => help.open());
  document.addEventListener("keydown", (event) => {
    const typing = isTextField(event.target);
    if (event.key === "Escape") {
      escape();
      if (typing) event.target.blur();
      return;
    }
    if (typing || event.metaKey || event.ctrlKey || event.altKey || event.defaultPrevented) return;
    if (dialog.open) return; // the dialog has the keyboard until it closes
    // Enter on a button, link or checkbox is that control's own; on a row or the page it opens.
    if (event.key === "Enter" && event.target.closest("button, a, input, summary")) return;
    const shortcut = table.find((s) => s.match.includes(event.key));
    if (!shortcut) return;
    event.preventDefault();
    shortcut.run();
  });
  return help;
}

function helpDialog(dialog, table) {
  dialog.replaceChildren(
    el("h2", { id: "shortcuts-title", text: "Keyboard shortcuts" }),
    el("p", { class: "muted", text: "When the focus is not in a text field." }),
    el(
      "dl",
      { class: "shortcut-list" },
      ...table.map((s) => [
        el("dt", {}, ...s.keys.flatMap((key, i) => [i ? " or " : null, el("kbd", { text: key })])),
        el("dd", { text: s.text }),
      ]),
    ),
    el("form", { method: "dialog" }, el("button", { class: "button small", text: "Close" })),
  );
  dialog.setAttribute("aria-labelledby", "shortcuts-title");
  return {
    open() {
      if (!dialog.open) dialog.showModal();
    },
  };
}
