// Saved views in the list pane: the manager's own and their teams' shared views, each with a
// live count. Clicking one puts its filters in the filter form (and so in the URL and the list).
// "Save view" keeps the current filters under a name, private or shared with a team; the owner
// (or staff) renames, refilters, (un)shares or deletes it.
//
// The counts: fetched with the others (/inbox/counts/, one statement, `views`), then moved by
// each conversation event's `views` — the conversation's state before and after the change —
// through `matches`, the list's own filter rules (communications/selectors.py
// conversation_filter). counts.js applies it; nothing is fetched per event.

import { api } from "./api.js";
import { el } from "./render.js";

// Whether a conversation in `state` (an event's `views.was` / `views.now`; null: not there or
// archived) is in a view with `filters` (canonical: ids as numbers, "me", "none", unread true)
// for the manager `me`.
export function matches(filters, state, me) {
  if (!state) return false;
  for (const [key, value] of Object.entries(filters || {})) {
    if (key === "status" && state.status !== value) return false;
    if (key === "channel" && state.channel !== value) return false;
    if (key === "assignee" || key === "team") {
      const wanted = value === "me" ? me : value === "none" ? null : value;
      if (state[key] !== wanted) return false;
    }
    if (key === "unread" && value && !state.unread) return false;
    if (key === "label" && !(state.labels || []).includes(value)) return false;
  }
  return true;
}

// How an event's `views` moves each view's count: {"<view id>": ±1}.
export function viewSteps(views, move, me) {
  const steps = {};
  for (const view of views) {
    const step = Number(matches(view.filters, move.now, me)) - Number(matches(view.filters, move.was, me));
    if (step) steps[view.id] = step;
  }
  return steps;
}

const sameParams = (a, b) => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (String(a[key] ?? "") !== String(b[key] ?? "")) return false;
  return true;
};

export class SavedViews {
  constructor({ root, dialog, views, myTeams, counts, readFilters, applyParams, toast }) {
    Object.assign(this, { root, dialog, myTeams, counts, readFilters, applyParams, toast });
    this.views = views;
    this.editing = null;
    this.reloadTimer = null;
    root.querySelector("[data-save-view]").addEventListener("click", () => this.openDialog(null));
    this.counts.setViews(views);
    this.render();
  }

  // The current filters as a view holds them (the search text is not a view filter).
  currentParams() {
    const { q, ...params } = this.readFilters();
    if (params.unread) params.unread = "true";
    return params;
  }

  render() {
    const current = this.currentParams();
    const items = this.views.map((view) => {
      const active = sameParams(view.params, current);
      return el(
        "li",
        { class: "saved-view", dataset: { viewId: view.id } },
        el(
          "button",
          {
            type: "button",
            class: "saved-view-link",
            "aria-current": active ? "true" : "false",
            title: view.shared ? `Shared with ${view.team.name} by ${view.owner.name}` : "Only you see this view",
            onclick: () => this.apply(view),
          },
          el("span", { class: "saved-view-name", text: view.name }),
          view.shared ? el("span", { class: "saved-view-shared", "aria-label": `shared with ${view.team.name}`, text: "team" }) : null,
          el("span", { class: "saved-view-count", dataset: { count: `view:${view.id}`, zero: "0" }, text: "0" }),
        ),
        view.can_edit
          ? el("button", { type: "button", class: "icon-button saved-view-edit", "aria-label": `Edit view ${view.name}`, text: "⋯", onclick: () => this.openDialog(view) })
          : null,
      );
    });
    const list = this.root.querySelector(".saved-views-list");
    list.replaceChildren(...items);
    this.root.querySelector(".saved-views-empty").hidden = this.views.length > 0;
    this.counts.render();
  }

  apply(view) {
    this.applyParams(view.params);
  }

  // The filters changed (a view clicked, a select changed): which view is shown, if any.
  filtersChanged() {
    this.render();
  }

  // `views.changed`: someone created, changed or deleted a view this manager sees. A change
  // this tab made and already shows needs no reload.
  changed({ id, deleted, updated_at: updatedAt }) {
    const known = this.views.find((view) => view.id === id);
    if (deleted ? !known : known && known.updated_at === updatedAt) return;
    this.reloadSoon();
  }

  reloadSoon() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload(), 150);
  }

  async reload() {
    try {
      this.views = (await api.views()).results;
    } catch (error) {
      this.toast(`Could not load your saved views: ${error.detail || error.message}`);
      return;
    }
    this.counts.setViews(this.views);
    this.render();
    await this.counts.refreshNow();
  }

  openDialog(view) {
    this.editing = view;
    const current = this.currentParams();
    const name = el("input", { name: "name", required: true, maxlength: 80, placeholder: "e.g. Unread VIP", "aria-label": "View name", autocomplete: "off" });
    const sharing = el(
      "select",
      { name: "team", "aria-label": "Who sees it" },
      el("option", { value: "", text: "Only me" }),
      ...this.myTeams.map((team) => el("option", { value: team.id, text: `Team ${team.name}` })),
    );
    const refilter = el("input", { type: "checkbox", name: "refilter" });
    const error = el("p", { class: "view-error", role: "alert", hidden: true });
    const describe = (params) =>
      Object.keys(params).length ? Object.entries(params).map(([k, v]) => `${k}: ${v}`).join(", ") : "no filter (everything)";
    if (view) {
      name.value = view.name;
      sharing.value = view.team ? String(view.team.id) : "";
    }
    const body = () => {
      const data = { name: name.value.trim(), team_id: sharing.value ? Number(sharing.value) : null };
      if (!view || refilter.checked) data.filters = current;
      return data;
    };
    const fail = (failure) => {
      error.textContent = failure.detail || failure.message;
      error.hidden = false;
    };
    const form = el(
      "form",
      {
        class: "view-form",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const saved = view ? await api.updateView(view.id, body()) : await api.createView(body());
            this.upsert(saved);
          } catch (failure) {
            return fail(failure);
          }
          this.dialog.close();
          this.counts.refreshNow(); // its count, from the same statement as the others
        },
      },
      el("h2", { text: view ? `Edit view “${view.name}”` : "Save the current filters as a view" }),
      el("label", { class: "view-field" }, "Name ", name),
      el("label", { class: "view-field" }, "Who sees it ", sharing),
      view
        ? el("label", { class: "check" }, refilter, ` Use the current filters instead (${describe(current)})`)
        : el("p", { class: "muted", text: `Filters: ${describe(current)}` }),
      view ? el("p", { class: "muted", text: `Its filters: ${describe(view.params)}` }) : null,
      error,
      el(
        "div",
        { class: "view-actions" },
        el("button", { type: "submit", class: "button primary small", text: view ? "Save" : "Save view" }),
        view
          ? el("button", {
              type: "button",
              class: "button small danger",
              text: "Delete view",
              onclick: async () => {
                try {
                  await api.deleteView(view.id);
                } catch (failure) {
                  return fail(failure);
                }
                this.views = this.views.filter((v) => v.id !== view.id);
                this.counts.setViews(this.views);
                this.render();
                this.dialog.close();
              },
            })
          : null,
        el("button", { type: "button", class: "button small ghost", text: "Cancel", onclick: () => this.dialog.close() }),
      ),
    );
    this.dialog.replaceChildren(form);
    this.dialog.showModal();
    name.focus();
  }

  upsert(saved) {
    const at = this.views.findIndex((v) => v.id === saved.id);
    if (at >= 0) this.views[at] = saved;
    else this.views.push(saved);
    this.views.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()) || a.id - b.id);
    this.counts.setViews(this.views);
    this.render();
  }
}
