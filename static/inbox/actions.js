// The open conversation's actions in its header: one primary Resolve / Reopen button, Snooze
// with presets (or a time of the manager's choosing), Assign and Team with type-ahead.
// Every action calls `change(fields)` (a PATCH of the conversation).

import { fullTime } from "./dates.js";
import { closePopover, popoverButton, typeAhead } from "./popover.js";
import { el } from "./render.js";

const STATUS_LABEL = { open: "Open", pending: "Pending", snoozed: "Snoozed", resolved: "Resolved" };

// When "tomorrow morning" and the like are, in the manager's own time zone.
export function snoozePresets(now = new Date()) {
  const at = (days, hour) => {
    const date = new Date(now);
    date.setDate(date.getDate() + days);
    date.setHours(hour, 0, 0, 0);
    return date;
  };
  const toMonday = ((8 - now.getDay()) % 7) || 7;
  return [
    { label: "In 1 hour", at: new Date(now.getTime() + 3600 * 1000) },
    { label: "In 3 hours", at: new Date(now.getTime() + 3 * 3600 * 1000) },
    { label: "Tomorrow morning", at: at(1, 9) },
    { label: "Next Monday", at: at(toMonday, 9) },
    { label: "In a week", at: at(7, 9) },
  ];
}

function localInputValue(date) {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function snoozeMenu(change) {
  const choose = (at) => {
    closePopover();
    change({ status: "snoozed", snoozed_until: at.toISOString() });
  };
  const presets = snoozePresets().map((preset) =>
    el(
      "button",
      { type: "button", class: "menu-item", dataset: { preset: preset.label }, onclick: () => choose(preset.at) },
      el("span", { text: preset.label }),
      el("span", { class: "menu-hint", text: fullTime(preset.at.toISOString()) }),
    ),
  );
  const input = el("input", {
    type: "datetime-local",
    class: "control",
    name: "snoozed_until",
    value: localInputValue(snoozePresets()[2].at),
    "aria-label": "Snooze until",
  });
  const custom = el(
    "form",
    {
      class: "snooze-form",
      onsubmit: (event) => {
        event.preventDefault();
        if (input.value) choose(new Date(input.value));
      },
    },
    input,
    el("button", { type: "submit", class: "button small", text: "Snooze" }),
  );
  const pending = el("button", {
    type: "button",
    class: "menu-item",
    dataset: { status: "pending" },
    text: "Waiting on the customer (pending)",
    onclick: () => {
      closePopover();
      change({ status: "pending" });
    },
  });
  return el("div", { class: "menu" }, ...presets, el("div", { class: "menu-label", text: "Until a time of your choosing" }), custom, el("hr"), pending);
}

export function renderActions(conversation, { me, managers, teams, change, merge = null }) {
  const resolved = conversation.status === "resolved";
  const snoozed = conversation.status === "snoozed";
  const primary = el("button", {
    type: "button",
    class: "button primary small status-action",
    dataset: { action: resolved || snoozed ? "reopen" : "resolve" },
    text: resolved || snoozed ? "Reopen" : "Resolve",
    onclick: () => change({ status: resolved || snoozed ? "open" : "resolved" }),
  });
  const status = el("span", {
    class: `tag status-${conversation.status} head-status`,
    title: snoozed && conversation.snoozed_until ? `Snoozed until ${fullTime(conversation.snoozed_until)}` : "",
    text: snoozed && conversation.snoozed_until ? `Snoozed until ${fullTime(conversation.snoozed_until)}` : STATUS_LABEL[conversation.status],
  });
  const snooze = popoverButton({ label: "Snooze", text: "Snooze", className: "button small snooze-action", build: () => snoozeMenu(change) });

  const assigneeId = conversation.assignee ? conversation.assignee.id : null;
  const people = [
    { value: me.id, label: `Me (${me.name})` },
    ...managers.filter((m) => m.id !== me.id).map((m) => ({ value: m.id, label: m.name })),
    { value: null, label: "Unassigned" },
  ];
  const assign = popoverButton({
    label: "Assign",
    text: conversation.assignee ? `@ ${conversation.assignee.name}` : "Assign",
    className: "button small assign-action",
    build: () => typeAhead({ label: "Assign to", options: people, current: assigneeId, onPick: (value) => change({ assignee_id: value }) }),
  });
  const teamName = (teams.find((t) => t.id === conversation.team_id) || {}).name;
  const team = popoverButton({
    label: "Team",
    text: teamName ? `Team: ${teamName}` : "Team",
    className: "button small team-action",
    build: () =>
      typeAhead({
        label: "Team",
        options: [...teams.map((t) => ({ value: t.id, label: t.name })), { value: null, label: "No team" }],
        current: conversation.team_id ?? null,
        onPick: (value) => change({ team_id: value }),
      }),
  });
  // `merge`: the "Merge…" button (merge.js), absent on a merged-away conversation.
  return el("div", { class: "head-controls" }, status, assign, team, snooze, merge, primary);
}
