// Wires the inbox page together: list, thread, reply box, realtime, filters, keyboard.

import { api } from "./api.js";
import { Composer } from "./composer.js";
import { Counts } from "./counts.js";
import { ConversationList } from "./list.js";
import { Realtime } from "./realtime.js";
import { refreshListTimes, watchThread } from "./day-separators.js";
import { layout } from "./layout.js";
import { el } from "./render.js";
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
  actions: {
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
async function openConversation(id) {
  list.markSelected(id);
  history.replaceState(history.state, "", `${location.pathname}${location.search}#c${id}`);
  layout.show("thread");
  let conversation;
  try {
    conversation = await thread.open(id);
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
  switch (event.type) {
    case "message.created":
    case "message.updated":
      thread.upsertMessage(event.data);
      break;
    case "conversation.created":
    case "conversation.updated":
      counts.apply(event);
      applyConversation(event.data);
      if (event.data.id === thread.id && event.data.unread_count > 0) markReadSoon(event.data);
      counts.refreshSoon();
      break;
    case "typing":
    case "viewing":
      thread.showPresence(event);
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
const realtime = new Realtime({
  lastEventId: boot.last_event_id,
  onEvent: applyEvent,
  onState: (state) => {
    const badge = $("#live");
    badge.dataset.state = state;
    badge.querySelector(".live-text").textContent = LIVE_TEXT[state];
    if (state === "live") badge.title = "";
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
});

// --- filters ------------------------------------------------------------------------------
const filters = $("#filters");
function readFilters() {
  const data = new FormData(filters);
  const values = Object.fromEntries([...data.entries()].filter(([, v]) => v !== ""));
  if (!filters.elements.unread.checked) delete values.unread;
  return values;
}
function applyFilters() {
  const values = readFilters();
  history.replaceState(history.state, "", `${location.pathname}?${new URLSearchParams(values)}${location.hash}`);
  for (const chip of document.querySelectorAll(".chip[data-status]")) {
    chip.setAttribute("aria-pressed", (values.status || "") === chip.dataset.status ? "true" : "false");
  }
  list.setFilters(values).catch((error) => toast(`Could not load conversations: ${error.detail || error.message}`));
}
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

// --- keyboard -----------------------------------------------------------------------------
document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape") {
    $("#lightbox").hidden = true;
    if (typing) event.target.blur();
    return;
  }
  if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp" || event.key === "j" || event.key === "k") {
    const next = list.neighbour(event.key === "ArrowDown" || event.key === "j" ? 1 : -1);
    if (next && next !== thread.id) openConversation(next);
    event.preventDefault();
  } else if (event.key === "r") {
    event.preventDefault();
    composer.focus();
  } else if (event.key === "/") {
    event.preventDefault();
    filters.elements.q.focus();
  }
});

const initial = Number((location.hash.match(/^#c(\d+)$/) || [])[1]);
if (initial) openConversation(initial);

window.switchboard = { list, thread, realtime, composer }; // a handle for debugging and tests
