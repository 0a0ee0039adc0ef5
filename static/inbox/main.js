// Wires the inbox page together: list, thread, reply box, realtime, filters, keyboard.

import { api } from "./api.js";
import { Bulk } from "./bulk.js";
import { CannedDialog } from "./canned.js";
import { Composer } from "./composer.js";
import { Counts } from "./counts.js";
import { Mentions } from "./mentions.js";
import { ConversationList } from "./list.js";
import { Realtime } from "./realtime.js";
import { refreshListTimes, watchThread } from "./day-separators.js";
import { layout } from "./layout.js";
import { Notifier } from "./notifications.js";
import { el } from "./render.js";
import { Search } from "./search.js";
import { SavedViews } from "./views.js";
import { installShortcuts } from "./shortcuts.js";
import { Thread } from "./thread.js";

const boot = JSON.parse(document.getElementById("inbox-bootstrap").textContent);
const $ = (selector) => document.querySelector(selector);

function toast(text) {
  const node = el("div", { class: "toast", role: "status", text });
  $("#toasts").append(node);
  setTimeout(() => node.remove(), 6000);
}

function lightbox(attachment) {
  const box = $("#lightbox");
  box.querySelector("img").src = attachment.url;
  box.querySelector("img").alt = attachment.filename || "image";
  box.querySelector("a").href = attachment.url;
  box.hidden = false;
}
$("#lightbox").addEventListener("click", (event) => {
  if (event.target.tagName !== "A") $("#lightbox").hidden = true;
});

let composer;
const thread = new Thread({
  root: $("#thread"),
  header: $("#thread-header"),
  messages: $("#messages"),
  card: $("#card"),
  presence: $("#presence"),
  me: boot.user,
  managers: boot.managers,
  teams: boot.teams,
  labelsBox: $("#thread-labels"),
  labelCatalog: boot.labels,
  actions: {
    applyConversation: (conversation) => applyConversation(conversation),
    labelsChanged: () => showLabelFilter(),
    retry: (message) => composer.retry(message),
    retryDownload: async (attachment) => {
      try {
        await api.retryDownload(attachment.id);
      } catch (error) {
        toast(`Could not retry the download: ${error.detail || error.message}`);
        throw error;
      }
    },
    lightbox,
    toast,
    // merge.js: a merge made here; "Split here" on a message
    merged: (result) => {
      applyConversation(result.merged);
      applyConversation(result.conversation);
      thread.reload().catch(() => {});
    },
    split: async (id, message) => {
      try {
        const result = await api.split(id, { message_id: message.id });
        applyConversation(result.conversation);
        list.upsert(result.split);
        toast(`Split into #${result.split.id}.`);
        openConversation(result.split.id);
      } catch (error) {
        toast(`Could not split: ${error.detail || error.message}`);
      }
    },
    updateConversation: async (id, changes) => {
      const conversation = await api.update(id, changes);
      applyConversation(conversation);
      return conversation;
    },
  },
});

// Before the socket connects: the first events may carry count deltas.
const counts = new Counts({ me: boot.user, initial: boot.counts, fetchCounts: api.counts });

const list = new ConversationList({
  root: $("#conversations"),
  sentinel: $("#list-sentinel"),
  me: boot.user,
  filters: boot.filters,
  onSelect: (id) => openConversation(id),
});
list.show(boot.conversations, boot.next_cursor);
watchThread($("#messages"));
refreshListTimes($("#conversations"));

// --- opening a conversation ---------------------------------------------------------------
let viewingTimer = null;
// `options.around`: a message id (a search hit) to open the thread at.
async function openConversation(id, options = {}) {
  list.markSelected(id);
  history.replaceState(history.state, "", `${location.pathname}${location.search}#c${id}`);
  layout.show("thread");
  let conversation;
  try {
    conversation = await thread.open(id, options);
  } catch (error) {
    toast(`Could not open the conversation: ${error.detail || error.message}`);
    return;
  }
  if (!conversation) return;
  composer.useConversation(conversation);
  list.upsert(conversation);
  markRead(conversation);
  clearInterval(viewingTimer);
  const announce = () => realtime.send({ type: "viewing", conversation_id: id });
  announce();
  viewingTimer = setInterval(announce, 20000);
}

async function markRead(conversation) {
  if (!conversation.unread_count || document.visibilityState !== "visible") return;
  try {
    applyConversation(await api.markRead(conversation.id));
  } catch (error) {
    /* the next open tries again */
  }
}

// --- realtime -----------------------------------------------------------------------------
function applyEvent(event) {
  notifier.onEvent(event);
  switch (event.type) {
    case "message.created":
    case "message.updated":
      thread.upsertMessage(event.data);
      if (event.type === "message.created" && event.data.direction === "in" && event.data.conversation_id === thread.id) {
        composer.customerWrote(event.data.conversation_id);
      }
      break;
    case "conversation.created":
    case "conversation.updated":
      counts.apply(event);
      applyConversation(event.data);
      if (event.data.id === thread.id && event.data.unread_count > 0) markReadSoon(event.data);
      // The open conversation was merged into another: its messages are there now.
      if (event.data.id === thread.id && event.data.merged_into_id) {
        toast(`This conversation was merged into #${event.data.merged_into_id}.`);
        openConversation(event.data.merged_into_id);
      }
      counts.refreshSoon();
      break;
    case "contact.updated":
      list.patchContact(event.data);
      thread.patchContact(event.data);
      break;
    case "typing":
    case "viewing":
      thread.showPresence(event);
      break;
    case "activity.created":
      thread.insertActivity(event.data);
      // Messages moved in or out of the open thread (a merge, its undo, a split): read it again.
      if (["merged", "unmerged", "split"].includes(event.data.verb) && event.data.conversation_id === thread.id) {
        reloadSoon();
      }
      break;
    case "views.changed":
      savedViews.changed(event.data);
      break;
    case "mention.created":
    case "mentions.read":
      mentions.apply(event);
      if (event.type === "mention.created") toast(`${event.data.message.sender_name} mentioned you: ${event.data.message.content.slice(0, 80)}`);
      break;
  }
}

// The newest version seen of each conversation, listed or not: an older copy changes nothing.
const seenVersions = new Map();
function isOlderThanSeen(conversation) {
  const seen = seenVersions.get(conversation.id);
  if (seen != null && conversation.version != null && conversation.version < seen) return true;
  if (conversation.version != null) seenVersions.set(conversation.id, conversation.version);
  if (seenVersions.size > 20000) seenVersions.delete(seenVersions.keys().next().value);
  return false;
}

// Every fresh copy of a conversation (event or response) goes through here.
function applyConversation(conversation) {
  if (isOlderThanSeen(conversation)) return;
  list.upsert(conversation);
  thread.applyConversation(conversation);
  refreshReplyWindow(conversation);
}

// The customer wrote again in a conversation whose reply box is closed (Messenger's or
// Instagram's 24-hour window): ask the server again whether replies can be sent now.
function refreshReplyWindow(conversation) {
  const known = composer && composer.conversation;
  if (!known || known.id !== conversation.id || !known.reply_unavailable) return;
  if (!conversation.last_inbound_at || conversation.last_inbound_at === known.last_inbound_at) return;
  known.last_inbound_at = conversation.last_inbound_at;
  api
    .conversation(conversation.id)
    .then((fresh) => {
      if (thread.id === fresh.id) composer.useConversation(fresh);
    })
    .catch(() => {
      /* the next open asks again */
    });
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => thread.reload().catch(() => {}), 150);
}

let readTimer = null;
function markReadSoon(conversation) {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => markRead(conversation), 800);
}

const LIVE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  stalled: "Delayed: server catching up…",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};
const notifier = new Notifier({
  me: boot.user,
  panel: $("#notify-panel"),
  toggle: $("#notify-toggle"),
  open: (id) => openConversation(id),
  toast,
});
const realtime = new Realtime({
  lastEventId: boot.last_event_id,
  onEvent: applyEvent,
  onState: (state) => {
    const badge = $("#live");
    badge.dataset.state = state;
    badge.querySelector(".live-text").textContent = LIVE_TEXT[state];
    if (state === "live") {
      badge.title = "";
      readAvailability();
    }
  },
  onResync: () => {
    list.reload();
    thread.reload().catch((error) => toast(`Could not reload the conversation: ${error.detail || error.message}`));
    counts.refreshNow();
  },
  onUnauthorized: () => location.assign("/accounts/login/?next=/inbox/"),
  // The server dropped the socket on purpose: say why; it reconnects and resumes by itself.
  onDropped: (reason) => {
    $("#live").title = `Disconnected: ${reason}`;
    toast(`Live updates were cut off: ${reason}. Reconnecting and catching up…`);
  },
});
realtime.connect();

composer = new Composer({
  form: $("#composer"),
  thread,
  realtime,
  maxUploadBytes: boot.max_upload_bytes,
  toast,
  myTeams: boot.my_teams,
});

// --- team workflow: mentions badge and panel, canned replies, the label filter --------------
const mentions = new Mentions({
  button: $("#mentions-button"),
  panel: $("#mentions-panel"),
  unread: boot.mentions_unread,
  onOpen: (id) => openConversation(id),
  toast,
});
const cannedDialog = new CannedDialog({ myTeams: boot.my_teams, toast, onChange: () => composer.forgetCanned() });
$("#composer .canned-manage").addEventListener("click", () => cannedDialog.open());

function showLabelFilter() {
  const select = $("#filters select[name=label]");
  const chosen = select.value;
  select.replaceChildren(
    el("option", { value: "", text: "Any label" }),
    ...boot.labels.map((label) => el("option", { value: label.id, text: label.name })),
  );
  select.value = chosen;
}

// --- filters ------------------------------------------------------------------------------
const filters = $("#filters");
function readFilters() {
  const data = new FormData(filters);
  const values = Object.fromEntries([...data.entries()].filter(([, v]) => v !== ""));
  if (!filters.elements.unread.checked) delete values.unread;
  return values;
}
// The search box searches everything (search.js) with the list's other filters; while it
// holds a query the grouped results stand in for the list.
const search = new Search({
  root: $("#search-results"),
  listScroll: $(".list-scroll"),
  onOpen: (id, options) => openConversation(id, options),
  toast,
});
function applyFilters() {
  const values = readFilters();
  savedViews.filtersChanged();
  history.replaceState(history.state, "", `${location.pathname}?${new URLSearchParams(values)}${location.hash}`);
  for (const chip of document.querySelectorAll(".chip[data-status]")) {
    chip.setAttribute("aria-pressed", (values.status || "") === chip.dataset.status ? "true" : "false");
  }
  const { q = "", ...listFilters } = values;
  search.run(q, listFilters);
  list.setFilters(listFilters).catch((error) => toast(`Could not load conversations: ${error.detail || error.message}`));
}
// Saved views (views.js): clicking one puts its filters in the form, so in the URL and the list.
const savedViews = new SavedViews({
  root: $("#saved-views"),
  dialog: $("#view-dialog"),
  views: boot.views,
  myTeams: boot.my_teams,
  counts,
  readFilters,
  applyParams: (params) => {
    filters.reset();
    filters.elements.status.value = "";
    for (const [key, value] of Object.entries(params)) {
      if (key === "unread") filters.elements.unread.checked = true;
      else if (filters.elements[key]) filters.elements[key].value = value;
    }
    applyFilters();
  },
  toast,
});
for (const [key, value] of Object.entries(boot.filters)) {
  if (key === "unread") filters.elements.unread.checked = true;
  else if (filters.elements[key]) filters.elements[key].value = value;
}
for (const chip of document.querySelectorAll(".chip[data-status]")) {
  chip.setAttribute("aria-pressed", (boot.filters.status || "") === chip.dataset.status ? "true" : "false");
  chip.addEventListener("click", () => {
    filters.elements.status.value = chip.dataset.status;
    applyFilters();
  });
}
filters.addEventListener("change", applyFilters);
let searchTimer = null;
filters.elements.q.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applyFilters, 300);
});
filters.addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters();
});

// --- keyboard (shortcuts.js) and bulk actions on the list (bulk.js) -------------------------
const bulk = new Bulk({
  list,
  bar: $("#bulk-bar"),
  announcer: $("#bulk-status"),
  selectAll: $("#select-all"),
  me: boot.user,
  managers: boot.managers,
  teams: boot.teams,
  labels: boot.labels,
  apply: (conversation) => applyConversation(conversation),
  toast,
});
// The current row: the open conversation's (j/k move it), else a row that has the focus.
const currentRow = () => list.selectedId || Number(document.activeElement?.closest?.("#conversations .row")?.dataset.id) || null;
const changeOpen = (changes) => {
  if (!thread.id) return toast("Open a conversation first");
  thread.change(changes);
};
installShortcuts({
  dialog: $("#shortcuts"),
  escape: () => ($("#lightbox").hidden = true),
  actions: {
    move: (step) => {
      const next = list.neighbour(step);
      if (next && next !== thread.id) openConversation(next);
    },
    open: () => {
      const id = currentRow() || list.neighbour(1);
      if (id) openConversation(id);
    },
    reply: () => {
      composer.setMode("text", { focus: false }); // from a note back to the reply (if the channel allows one)
      composer.focus();
    },
    note: () => composer.setMode("note"),
    resolve: () => changeOpen({ status: "resolved" }),
    assignToMe: () => changeOpen({ assignee_id: boot.user.id }),
    toggleRow: () => currentRow() && bulk.toggle(currentRow()),
    search: () => filters.elements.q.focus(),
  },
});

if (boot.filters.q) {
  const { q, ...others } = readFilters();
  search.run(q || "", others);
}

// --- availability (auto-assignment gives new conversations only to "online" managers) ------
const availability = $("#availability");
function showAvailability(status) {
  availability.value = status;
  availability.closest(".availability").dataset.status = status;
  availability.disabled = false;
}
availability.addEventListener("change", async () => {
  const wanted = availability.value;
  availability.disabled = true;
  try {
    showAvailability((await api.setAvailability(wanted)).status);
  } catch (error) {
    toast(`Could not set your availability: ${error.detail || error.message}`);
    showAvailability(availability.closest(".availability").dataset.status || "offline");
  }
});
// An opening socket brings back a manager whom the server had set offline: read it when live.
function readAvailability() {
  api.availability().then((a) => showAvailability(a.status)).catch(() => {});
}

const initial = Number((location.hash.match(/^#c(\d+)$/) || [])[1]);
if (initial) openConversation(initial);

window.switchboard = { list, thread, realtime, composer, mentions, notifier, search, bulk, savedViews }; // a handle for debugging and tests
