// Email messages in the thread: From / To / Cc / Subject, the body with quoted replies and
// signatures folded away, and the mail's own formatting on request.
//
// The HTML was sanitised by nh3 when the mail arrived (integrations/email/parse.py) and its
// remote images were disabled (src → data-src). It is shown in a sandboxed iframe without
// scripts; remote images load only when the manager asks (a tracking pixel tells the sender
// the mail was read).
import { el, linkify } from "./render.js";

const QUOTE_HEADER = /^(On\s.{4,300}\swrote:|-{2,}\s*Original Message\s*-{2,}|_{5,}|From:\s.+)\s*$/i;
const SIGNATURE = /^--\s?$/;

function addressList(people) {
  return (people || []).map((p) => (p.name ? `${p.name} <${p.address}>` : p.address)).join(", ");
}

export function emailHeader(email) {
  const rows = [
    ["From", email.from ? addressList([email.from]) : ""],
    ["To", addressList(email.to)],
    ["Cc", addressList(email.cc)],
    ["Subject", email.subject || ""],
  ].filter(([, value]) => value);
  return el(
    "dl",
    { class: "email-head" },
    rows.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: value })]),
  );
}

// Where the new text ends: the first quote header or signature, or a trailing block of
// ">"-quoted lines. Returns [own text, folded rest].
export function splitQuoted(text) {
  const lines = text.split(/\r?\n/);
  let cut = lines.findIndex((line) => QUOTE_HEADER.test(line.trim()) || SIGNATURE.test(line));
  if (cut === -1) {
    cut = lines.findIndex(
      (line, i) => line.startsWith(">") && lines.slice(i).every((rest) => rest.startsWith(">") || !rest.trim()),
    );
  }
  if (cut <= 0) return [text, ""];
  return [lines.slice(0, cut).join("\n").trimEnd(), lines.slice(cut).join("\n")];
}

function folded(text) {
  return el(
    "details",
    { class: "email-quote" },
    el("summary", { text: "Show quoted text" }),
    el("div", { class: "text" }, linkify(text)),
  );
}

function htmlFrame(html) {
  const frame = el("iframe", {
    class: "email-html",
    title: "The email as its sender formatted it",
    // No scripts, no forms, no popups; same origin only so this page can size it and fold
    // its quotes (the sanitised HTML has no scripts to use that).
    sandbox: "allow-same-origin",
    referrerpolicy: "no-referrer",
  });
  // The frame inherits this page's Content-Security-Policy (no inline styles): style it
  // through the CSSOM once it has loaded.
  frame.srcdoc = `<!doctype html><meta charset="utf-8"><base target="_blank">${html}`;
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (!doc || !doc.body) return;
    Object.assign(doc.body.style, { font: "14px/1.45 system-ui, sans-serif", margin: "0", overflowWrap: "anywhere" });
    for (const img of doc.querySelectorAll("img")) Object.assign(img.style, { maxWidth: "100%", height: "auto" });
    for (const quote of doc.querySelectorAll("blockquote")) quote.style.display = "none";
    frame.style.height = `${Math.min(doc.documentElement.scrollHeight + 4, 1200)}px`;
  });
  return frame;
}

function loadImages(frame, button) {
  const doc = frame.contentDocument;
  if (!doc) return;
  for (const img of doc.querySelectorAll("img[data-src]")) img.setAttribute("src", img.getAttribute("data-src"));
  for (const quote of doc.querySelectorAll("blockquote")) quote.style.display = "block";
  button.remove();
  setTimeout(() => {
    frame.style.height = `${Math.min(doc.documentElement.scrollHeight + 4, 2400)}px`;
  }, 300);
}

// The body of an email message, or null when the message is not an email.
export function renderEmailBody(message) {
  const email = message.metadata && message.metadata.email;
  if (!email || !email.from) return null;
  const body = el("div", { class: "email" }, emailHeader(email));
  const [own, quoted] = splitQuoted(message.content || "");
  if (own) body.append(el("div", { class: "text" }, linkify(own)));
  if (quoted) body.append(folded(quoted));
  if (email.html) {
    const controls = el("div", { class: "email-controls" });
    const show = el("button", { type: "button", class: "link-button", text: "Show original formatting" });
    show.addEventListener("click", () => {
      const frame = htmlFrame(email.html);
      const images = el("button", {
        type: "button",
        class: "link-button",
        text: "Load remote images",
        title: "Images from the sender's servers: loading them tells the sender the mail was read",
      });
      images.addEventListener("click", () => loadImages(frame, images));
      controls.replaceChildren(images);
      body.append(frame);
    });
    controls.append(show);
    body.append(controls);
  } else if (email.html_truncated) {
    body.append(el("p", { class: "hint", text: "The formatted version was too large to keep; the text is above." }));
  }
  return body;
}
