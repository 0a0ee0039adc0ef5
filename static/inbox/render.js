// DOM building for the inbox. Text from customers only ever goes in through textContent or
// text nodes; links are built as elements with http(s) hrefs only.
import { clockTime, fullTime } from "./dates.js";
import { renderEmailBody } from "./email.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let href = match[0];
    const trailing = href.match(TRAILING);
    if (trailing) href = href.slice(0, -trailing[0].length);
    fragment.append(document.createTextNode(text.slice(last, match.index)));
    if (isSafeUrl(href)) {
      fragment.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: href }));
    } else {
      fragment.append(document.createTextNode(href));
    }
    last = match.index + href.length;
  }
  fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

function isSafeUrl(href) {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

export function initials(name) {
  const parts = (name || "?").trim().split(/\s+/).filter(Boolean);
  return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

// The contact's picture over its initials. Only our own served copy (a same-origin path,
// permission-checked, cached by the browser) is shown, never a platform's URL; a picture that
// fails to load leaves the initials.
export function avatar(name, size = "", url = "") {
  let hash = 0;
  for (const ch of name || "?") hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const picture = typeof url === "string" && url.startsWith("/media/avatars/")
    ? el("img", { class: "avatar-img", src: url, alt: "", loading: "lazy", decoding: "async", onerror: (e) => e.target.remove() })
    : null;
  return el("span", { class: `avatar ${size}`, style: `--hue:${hash % 360}`, "aria-hidden": "true" }, initials(name), picture);
}

// Dates are formatted in one place (dates.js); these names stay for the modules using them.
export { relativeTime as shortTime, fullTime, clockTime } from "./dates.js";

export function contactName(contact) {
  return contact.name || contact.phone || contact.email || contact.username || `Contact #${contact.id}`;
}

// The channel a conversation is on. Where it is one of several numbers (each connected
// WhatsApp number is its own channel), say which one: "WhatsApp via +1 555 765 4321".
export function channelTag(channel) {
  const text = channel.address ? `via ${channel.address}` : channel.name;
  return el("span", { class: `tag channel kind-${channel.kind}`, title: channel.name, text });
}

export function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

const STATUS_LABEL = {
  sending: "Sending…",
  pending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Seen",
  failed: "Failed",
  unknown: "Delivery unknown",
  received: "",
};
const STATUS_ICON = { sending: "◷", pending: "◷", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!", unknown: "?" };

// A message bubble. `actions.retry(message)` is called by the retry button of a failed one,
// and of an unknown one (it may have arrived: sending again is the manager's decision).
export function renderMessage(message, actions) {
  const outbound = message.direction === "out";
  const note = message.kind === "note";
  const classes = ["msg", outbound ? "out" : "in", note ? "note" : "", `status-${message.status}`];
  const bubble = el("div", { class: "bubble" });
  if (note) bubble.append(el("div", { class: "note-label", text: "Private note" }));
  if (message.is_deleted) {
    bubble.append(el("em", { class: "deleted", text: "This message was deleted" }));
  } else {
    for (const attachment of message.attachments || []) bubble.append(renderAttachment(attachment, actions));
    const email = renderEmailBody(message);
    if (email) bubble.append(email);
    else if (message.content) bubble.append(el("div", { class: "text" }, note ? withMentions(message) : linkify(message.content)));
  }
  const meta = el(
    "div",
    { class: "meta" },
    message.sender_name && outbound ? el("span", { class: "who", text: message.sender_name }) : null,
    el("time", { datetime: message.created_at, title: fullTime(message.created_at), text: clockTime(message.created_at) }),
    message.is_edited ? el("span", { class: "edited", text: "edited" }) : null,
    outbound && !note
      ? el("span", { class: "tick", title: STATUS_LABEL[message.status] || "", text: STATUS_ICON[message.status] || "" })
      : null,
  );
  bubble.append(meta);
  // Reactions (one per person: WhatsApp's rule) sit on the message they name.
  const reactions = Object.values((message.metadata && message.metadata.reactions) || {}).filter((r) => r && r.key);
  if (reactions.length && !message.is_deleted) {
    const counts = new Map();
    for (const reaction of reactions) counts.set(reaction.key, (counts.get(reaction.key) || 0) + 1);
    bubble.append(
      el(
        "div",
        { class: "reactions", "aria-label": "Reactions" },
        [...counts].map(([key, count]) => el("span", { class: "reaction", text: count > 1 ? `${key} ${count}` : key })),
      ),
    );
  }
  if (message.status === "failed") {
    bubble.append(
      el(
        "div",
        { class: "failure", role: "alert" },
        el("span", { text: `Not delivered: ${message.failure_reason || "unknown error"}` }),
        el("button", { type: "button", class: "retry", onclick: () => actions.retry(message), text: "Retry" }),
      ),
    );
  } else if (message.status === "unknown") {
    bubble.append(
      el(
        "div",
        { class: "failure unknown", role: "alert" },
        el("span", { text: `Delivery unknown: ${message.failure_reason || "no answer from the platform"}` }),
        el("button", { type: "button", class: "retry", onclick: () => actions.retry(message), text: "Send again" }),
      ),
    );
  }
  return el(
    "div",
    {
      class: classes.filter(Boolean).join(" "),
      dataset: {
        id: message.id ?? "",
        clientId: message.client_id ?? "",
        created: message.created_at,
        updated: message.updated_at ?? "",
        version: message.version ?? "",
      },
    },
    bubble,
  );
}

function downloadLink(attachment) {
  return el(
    "a",
    { class: "file", href: attachment.url, download: attachment.filename || true },
    el("span", { class: "file-icon", "aria-hidden": "true", text: "⤓" }),
    el("span", { class: "file-name", text: attachment.filename || "attachment" }),
    attachment.size ? el("span", { class: "file-size", text: humanSize(attachment.size) }) : null,
  );
}

function fallBackToDownload(node, attachment) {
  node.replaceWith(downloadLink(attachment));
}

// Media the provider could not give us yet: the message is kept, the file is retried.
function downloadPlaceholder(attachment, actions) {
  const button = el("button", { type: "button", class: "retry-download", text: "Retry" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Retrying…";
    try {
      await actions.retryDownload(attachment);
    } catch {
      button.disabled = false;
      button.textContent = "Retry";
    }
  });
  return el(
    "div",
    { class: "file download-failed", dataset: { attachmentId: attachment.id } },
    el("span", { class: "file-icon", "aria-hidden": "true", text: "⚠" }),
    el("span", { class: "file-name", text: attachment.filename || "attachment" }),
    el("span", { class: "file-size", title: attachment.download_error || "", text: "couldn't download — retry" }),
    button,
  );
}

export function renderAttachment(attachment, actions) {
  if (attachment.download_state === "failed") return downloadPlaceholder(attachment, actions);
  if (attachment.uploading) {
    return el("div", { class: "file uploading" }, el("span", { class: "file-name", text: attachment.filename }),
      el("span", { class: "file-size", text: "uploading…" }));
  }
  const major = (attachment.mime_type || "").split("/")[0];
  if (major === "image") {
    const image = el("img", {
      class: "media image",
      src: attachment.url,
      alt: attachment.filename || "image",
      loading: "lazy",
      decoding: "async",
      width: attachment.width,
      height: attachment.height,
    });
    image.addEventListener("error", () => fallBackToDownload(image, attachment), { once: true });
    image.addEventListener("click", () => actions.lightbox(attachment));
    return image;
  }
  if (major === "video" || major === "audio") {
    const media = el(major, { class: `media ${major}`, src: attachment.url, controls: true, preload: "metadata" });
    media.addEventListener("error", () => fallBackToDownload(media, attachment), { once: true });
    return media;
  }
  if (attachment.thumbnail_url) {
    // A preview the worker rendered (a PDF's first page): it opens the file.
    return el(
      "div",
      { class: "file-preview" },
      el(
        "a",
        { href: attachment.url, target: "_blank", rel: "noopener", title: attachment.filename },
        el("img", { src: attachment.thumbnail_url, alt: `First page of ${attachment.filename || "the document"}`, loading: "lazy" }),
      ),
      downloadLink(attachment),
    );
  }
  return downloadLink(attachment);
}

// Every payload carries the row's `version`, bumped by each change in the same UPDATE: a copy
// with a lower version (an event delayed behind a newer one, a slow response) is older.
export const olderThan = (copy, current) => copy.version != null && current.version != null && copy.version < current.version;

// A note's @mentions (the server resolved them into metadata.mentions) stand out.
function withMentions(message) {
  const names = new Set(((message.metadata || {}).mentions || []).map((m) => m.username));
  if (!names.size) return linkify(message.content);
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of message.content.matchAll(/@([\w.@+-]+)/g)) {
    const name = match[1].replace(/[.,;:!?)'"]+$/, "");
    if (!names.has(name)) continue;
    fragment.append(linkify(message.content.slice(last, match.index)));
    fragment.append(el("span", { class: "mention", text: `@${name}` }));
    last = match.index + name.length + 1;
  }
  fragment.append(linkify(message.content.slice(last)));
  return fragment;
}

// A label as a coloured chip; with `onRemove`, a × button takes it off.
export function labelChip(label, onRemove) {
  return el(
    "span",
    { class: "label-chip", style: `--label-color:${label.color}`, dataset: { labelId: label.id } },
    el("span", { class: "label-dot", "aria-hidden": "true" }),
    label.name,
    onRemove
      ? el("button", { type: "button", class: "label-remove", "aria-label": `Remove label ${label.name}`, text: "×", onclick: () => onRemove(label) })
      : null,
  );
}

// An activity line in the thread: "Dana assigned this to Sam · 14:02".
export function renderActivity(activity) {
  return el(
    "div",
    { class: "activity-line", role: "note", dataset: { activityId: activity.id, created: activity.created_at } },
    el("span", { class: "activity-text", text: activity.text }),
    " · ",
    el("time", { datetime: activity.created_at, title: fullTime(activity.created_at), text: clockTime(activity.created_at) }),
  );
}
