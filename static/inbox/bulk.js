// Bulk actions in the conversation list: a checkbox per row (shift-click selects a range,
// "Select all" takes every loaded row of this filter), and a bar with the count that assigns,
// labels, resolves or snoozes them all at once. Rows change only from the server's answer and
// the realtime events; an error is said in words and nothing is changed (the API is all or
// nothing per request of ≤ 100).

import { api } from "./api.js";
import { contactName, el, fullTime } from "./render.js";
import { Suggest, rank } from "./suggest.js";
import { snoozePresets } from "./actions.js";

const BATCH = 100; // the API's limit per request

export class Bulk {
  constructor({ list, bar, announcer, selectAll, me, managers, teams, labels, apply, toast }) {
    this.list = list;
    this.bar = bar;
    this.announcer = announcer;
    this.selectAllButton = selectAll;
    this.me = me;
    this.managers = managers;
    this.teams = teams || [];
    this.labels = labels; // the page's label catalogue (shared, kept current by the thread)
    this.apply = apply;
    this.toast = toast;
    this.selected = new Set();
    this.anchor = null;
    this.build();
    list.decorateRow = (node, conversation) => this.decorate(node, conversation);
    for (const { node, data } of list.rows.values()) this.decorate(node, data);
    // Rows leave the list (a filter change, a resolved row in "Open"): they leave the selection.
    new MutationObserver(() => this.prune()).observe(list.root, { childList: true });
    selectAll.addEventListener("click", () => this.selectAll());
  }

  // --- selection ----------------------------------------------------------------------------
  decorate(node, conversation) {
    // For the pointer only, and never focusable: a focusable control inside the row (a listbox
    // option) would be nested interaction. Keyboard and screen-reader users select with `x`,
    // and the row itself says whether it is selected (aria-checked).
    const on = this.selected.has(conversation.id);
    const box = el("span", {
      class: "row-check",
      role: "checkbox",
      "aria-checked": on ? "true" : "false",
      "aria-hidden": "true",
      title: `Select ${contactName(conversation.contact)} (x)`,
      onclick: (event) => {
        event.stopPropagation(); // selecting is not opening
        this.toggle(conversation.id, box.getAttribute("aria-checked") !== "true", { range: event.shiftKey });
      },
    });
    node.classList.toggle("checked", on);
    node.setAttribute("aria-checked", on ? "true" : "false");
    node.prepend(el("span", { class: "row-check-wrap", onclick: (event) => event.stopPropagation() }, box));
  }

  order() {
    return [...this.list.root.querySelectorAll(".row")].map((node) => Number(node.dataset.id));
  }

  toggle(id, on = !this.selected.has(id), { range = false } = {}) {
    const ids = this.order();
    let targets = [id];
    if (range && this.anchor != null && ids.includes(this.anchor) && ids.includes(id)) {
      const [from, to] = [ids.indexOf(this.anchor), ids.indexOf(id)].sort((a, b) => a - b);
      targets = ids.slice(from, to + 1);
    }
    for (const target of targets) {
      if (on) this.selected.add(target);
      else this.selected.delete(target);
    }
    this.anchor = id;
    this.refresh();
  }

  selectAll() {
    const ids = this.order();
    for (const id of ids) this.selected.add(id);
    this.refresh(`All ${ids.length} loaded conversation${ids.length === 1 ? "" : "s"} in this filter selected`);
  }

  clear() {
    this.selected.clear();
    this.anchor = null;
    this.refresh("Selection cleared");
  }

  prune() {
    const present = new Set(this.order());
    let changed = false;
    for (const id of this.selected) {
      if (!present.has(id)) {
        this.selected.delete(id);
        changed = true;
      }
    }
    if (changed) this.refresh();
  }

  ids() {
    return this.order().filter((id) => this.selected.has(id));
  }

  // Checkboxes, row highlight, the bar and its count follow the selection.
  refresh(say) {
    for (const node of this.list.root.querySelectorAll(".row")) {
      const on = this.selected.has(Number(node.dataset.id));
      node.classList.toggle("checked", on);
      node.setAttribute("aria-checked", on ? "true" : "false");
      node.querySelector(".row-check")?.setAttribute("aria-checked", on ? "true" : "false");
    }
    const count = this.selected.size;
    const wasHidden = this.bar.hidden;
    this.bar.hidden = count === 0;
    if (count === 0) this.closePanels();
    this.count.textContent = `${count} selected`;
    const total = this.order().length;
    this.selectAllButton.textContent = `Select all ${total} in this filter`;
    if (say || wasHidden !== this.bar.hidden || count) this.say(say || (count ? `${count} conversation${count === 1 ? "" : "s"} selected` : "No conversation selected"));
  }

  say(text) {
    this.announcer.textContent = text;
  }

  // --- the bar ------------------------------------------------------------------------------
  build() {
    this.count = el("strong", { class: "bulk-count", text: "0 selected" });
    this.error = el("p", { class: "bulk-error", role: "alert", hidden: true });
    const panel = (name, ...children) => el("div", { class: "bulk-panel", dataset: { panel: name }, hidden: true }, ...children);
    const button = (text, attrs) => el("button", { type: "button", class: "button small ghost", text, ...attrs });

    // Assign: a type-ahead over the team's managers ("me" first), then the teams.
    this.assignInput = el("input", { type: "text", class: "control", name: "bulk-assignee", placeholder: "Assign to… (a name, me, or a team)", "aria-label": "Assign the selected conversations to", autocomplete: "off" });
    const assignWrap = el("span", { class: "bulk-field" }, this.assignInput);
    this.assignSuggest = new Suggest({ field: this.assignInput, container: assignWrap, label: "Managers and teams", onPick: (value) => (value.team ? this.assignTeam(value.team) : this.assign(value)) });
    const assignItems = () => {
      const people = [{ id: this.me.id, name: `Me (${this.me.name})`, key: "me" }, ...this.managers.filter((m) => m.id !== this.me.id)];
      const query = this.assignInput.value.trim();
      const found = rank(people, query, (m) => [m.name, m.key, m.username]).slice(0, 8);
      const items = found.map((m) => ({ key: `m${m.id}`, text: m.name, value: m }));
      if (!query || "unassigned".startsWith(query.toLowerCase())) items.push({ key: "none", text: "Unassigned", hint: "nobody", value: { id: null, name: "nobody" } });
      for (const team of rank(this.teams, query, (t) => [t.name]).slice(0, 4)) items.push({ key: `t${team.id}`, text: team.name, hint: "team", value: { team } });
      if (query && "no team".startsWith(query.toLowerCase())) items.push({ key: "noteam", text: "No team", hint: "team", value: { team: { id: null, name: "no team" } } });
      this.assignSuggest.show(items);
    };
    this.fieldKeys(this.assignInput, this.assignSuggest, assignItems);

    // Label: add a label to all, or remove one that some of them carry.
    this.labelInput = el("input", { type: "text", class: "control", name: "bulk-label", placeholder: "Label… (type a name)", "aria-label": "Label the selected conversations", autocomplete: "off" });
    const labelWrap = el("span", { class: "bulk-field" }, this.labelInput);
    this.labelSuggest = new Suggest({ field: this.labelInput, container: labelWrap, label: "Labels", onPick: (value) => this.label(value) });
    const labelItems = () => {
      const query = this.labelInput.value.trim();
      const carried = new Map();
      for (const id of this.selected) for (const label of (this.list.get(id) || {}).labels || []) carried.set(label.id, label);
      const adds = rank(this.labels, query, (l) => [l.name]).slice(0, 8).map((l) => ({ key: `a${l.id}`, text: l.name, hint: "add", value: { add: l } }));
      const removes = rank([...carried.values()], query, (l) => [l.name]).slice(0, 4).map((l) => ({ key: `r${l.id}`, text: `Remove ${l.name}`, hint: "remove", value: { remove: l } }));
      this.labelSuggest.show([...adds, ...removes]);
    };
    this.fieldKeys(this.labelInput, this.labelSuggest, labelItems);

    this.snoozeButtons = el("span", { class: "bulk-presets" });
    this.toggles = {
      assign: button("Assign", { "aria-expanded": "false", dataset: { opens: "assign" } }),
      label: button("Label", { "aria-expanded": "false", dataset: { opens: "label" } }),
      snooze: button("Snooze", { "aria-expanded": "false", dataset: { opens: "snooze" } }),
    };
    for (const [name, toggle] of Object.entries(this.toggles)) toggle.addEventListener("click", () => this.openPanel(name));
    this.bar.replaceChildren(
      el(
        "div",
        { class: "bulk-actions" },
        this.count,
        this.toggles.assign,
        this.toggles.label,
        button("Resolve", { class: "button small", onclick: () => this.resolve() }),
        this.toggles.snooze,
        button("Clear", { "aria-label": "Clear the selection", onclick: () => this.clear() }),
      ),
      panel("assign", assignWrap),
      panel("label", labelWrap),
      panel("snooze", this.snoozeButtons),
      this.error,
    );
    this.bar.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      const open = this.bar.querySelector(".bulk-panel:not([hidden])");
      if (!open) return;
      event.stopPropagation();
      this.closePanels();
      this.toggles[open.dataset.panel].focus();
    });
  }

  fieldKeys(field, suggest, items) {
    field.addEventListener("input", items);
    field.addEventListener("focus", items);
    field.addEventListener("keydown", (event) => {
      if (suggest.handleKey(event)) return;
    });
  }

  openPanel(name) {
    const panel = this.bar.querySelector(`[data-panel="${name}"]`);
    const opening = panel.hidden;
    this.closePanels();
    if (!opening) return;
    panel.hidden = false;
    this.toggles[name].setAttribute("aria-expanded", "true");
    if (name === "snooze") {
      this.snoozeButtons.replaceChildren(
        ...snoozePresets().map(({ label: text, at: when }) =>
          el("button", { type: "button", class: "button small ghost snooze-preset", text, title: fullTime(when.toISOString()), onclick: () => this.snooze(text, when) }),
        ),
      );
      this.snoozeButtons.firstChild.focus();
    } else {
      const field = name === "assign" ? this.assignInput : this.labelInput;
      field.value = "";
      field.focus();
    }
  }

  closePanels() {
    for (const panel of this.bar.querySelectorAll(".bulk-panel")) panel.hidden = true;
    for (const toggle of Object.values(this.toggles)) toggle.setAttribute("aria-expanded", "false");
  }

  // --- actions ------------------------------------------------------------------------------
  resolve() {
    return this.change({ status: "resolved" }, "resolve", "Resolved");
  }

  snooze(text, when) {
    return this.change({ status: "snoozed", snoozed_until: when.toISOString() }, "snooze", `Snoozed (${text})`);
  }

  assign(manager) {
    return this.change({ assignee_id: manager.id }, "assign", manager.id ? `Assigned to ${manager.id === this.me.id ? "you" : manager.name}` : "Unassigned");
  }

  assignTeam(team) {
    return this.change({ team_id: team.id }, "assign", team.id ? `Handed to ${team.name}` : "Team removed");
  }

  // One change to every selected conversation: the rows show the server's answer.
  async change(changes, verb, done) {
    const ids = this.ids();
    if (!ids.length) return;
    await this.run(verb, ids, async (batch) => {
      const answer = await api.bulk({ ids: batch, ...changes });
      for (const conversation of answer.results) this.apply(conversation);
    }, done);
  }

  async label(value) {
    const ids = this.ids();
    if (!ids.length) return;
    const label = value.add || value.remove;
    const body = { add: value.add ? [label.id] : [], remove: value.remove ? [label.id] : [] };
    await this.run("label", ids, async (batch) => {
      await api.bulkLabels({ conversation_ids: batch, ...body });
      // The answer is a count; each conversation's event brings its new copy. Until then the
      // rows show the change on the copy they have (an event already newer wins: olderThan).
      for (const id of batch) {
        const row = this.list.get(id);
        if (!row) continue;
        const labels = (row.labels || []).filter((l) => l.id !== label.id);
        if (value.add) labels.push(label);
        labels.sort((a, b) => a.name.localeCompare(b.name));
        this.apply({ ...row, labels });
      }
    }, value.add ? `Label ${label.name} added` : `Label ${label.name} removed`);
  }

  async run(verb, ids, call, done) {
    this.error.hidden = true;
    this.bar.setAttribute("aria-busy", "true");
    let finished = 0;
    try {
      for (let start = 0; start < ids.length; start += BATCH) {
        const batch = ids.slice(start, start + BATCH);
        await call(batch);
        finished += batch.length;
      }
    } catch (error) {
      const partly = finished ? ` (the first ${finished} were changed)` : " Nothing was changed.";
      const text = `Could not ${verb} the selected conversations: ${error.detail || error.message}.${partly}`;
      this.error.textContent = text;
      this.error.hidden = false;
      this.say(text);
      return;
    } finally {
      this.bar.removeAttribute("aria-busy");
    }
    this.closePanels();
    this.selected.clear();
    this.anchor = null;
    this.refresh(`${done}: ${ids.length} conversation${ids.length === 1 ? "" : "s"}`);
    this.toast(`${done}: ${ids.length} conversation${ids.length === 1 ? "" : "s"}`);
  }
}
