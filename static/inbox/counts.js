// The numbers beside the filters (All, Open, …, Mine, Unassigned, Unread) and the title's unread
// count. They move with each conversation event's `counts` delta, worked out once by the server
// per change (communications/counts.py): no refetch per event. A refetch at most every 15 s
// after events stays as a safety net. A fetched set says which event it is `as_of`: only later
// events' deltas are applied to it, so none is counted twice, and the deltas of events that
// overtook a refetch are applied again on top of its answer.
//
// Saved views' counts ("view:<id>") move the same way, from an event's `views` (the
// conversation's state before and after: views.js `viewSteps`), worked out here per view: the
// server sends one state per change whatever views each page has.

import { viewSteps } from "./views.js";

const SAFETY_NET_MS = 15000;
const REMEMBERED = 500; // recent deltas, for a refetch they overtook

export class Counts {
  constructor({ me, initial, fetchCounts }) {
    this.me = String(me.id);
    this.fetchCounts = fetchCounts;
    this.timer = null;
    this.recent = []; // [event id, delta, views move], oldest first
    this.views = [];
    this.show(initial);
  }

  // The saved views whose counts are shown (views.js), with their filters.
  setViews(views) {
    this.views = views;
  }

  show(fresh) {
    const { as_of: asOf, views = {}, ...values } = fresh;
    for (const [id, count] of Object.entries(views)) values[`view:${id}`] = count;
    this.values = values;
    this.asOf = asOf || 0;
    for (const [id, delta, move] of this.recent) if (id > this.asOf) this.add(delta, move);
    this.render();
  }

  // A realtime event: its delta, if it has one and the shown numbers do not include it yet.
  apply(event) {
    if ((!event.counts && !event.views) || event.id == null || event.id <= this.asOf) return;
    this.recent.push([event.id, event.counts, event.views]);
    if (this.recent.length > REMEMBERED) this.recent.shift();
    this.add(event.counts, event.views);
    this.render();
  }

  add(delta, move) {
    if (move) {
      for (const [id, step] of Object.entries(viewSteps(this.views, move, Number(this.me)))) this.move(`view:${id}`, step);
    }
    for (const [name, step] of Object.entries(delta || {})) {
      if (name === "mine") {
        if (step[this.me]) this.move("mine", step[this.me]);
      } else {
        this.move(name, step);
      }
    }
  }

  move(name, step) {
    this.values[name] = Math.max(0, (this.values[name] || 0) + step);
  }

  render() {
    for (const node of document.querySelectorAll("[data-count]")) {
      const value = this.values[node.dataset.count];
      node.textContent = value ? String(value) : node.dataset.zero || "";
    }
    const unread = this.values.unread;
    document.title = unread ? `(${unread}) Inbox · Switchboard` : "Inbox · Switchboard";
  }

  // After a resync (too much missed to replay): fetch them now.
  async refreshNow() {
    try {
      this.show(await this.fetchCounts());
    } catch {
      this.refreshSoon();
    }
  }

  // At most one refetch per SAFETY_NET_MS per tab, and none while the tab is hidden.
  refreshSoon() {
    if (this.timer) return;
    this.timer = setTimeout(async () => {
      this.timer = null;
      if (document.visibilityState !== "visible") return this.refreshSoon();
      try {
        this.show(await this.fetchCounts());
      } catch {
        /* the shown numbers stay; the events keep moving them */
      }
    }, SAFETY_NET_MS);
  }
}
