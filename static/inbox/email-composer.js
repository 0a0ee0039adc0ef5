// The reply box of an email conversation: says it sends an email, shows the subject, and
// lets the manager change To and add Cc (left empty, the reply goes to the customer's
// latest address, as the server decides).
import { el } from "./render.js";

const SPLIT = /[\s,;]+/;

function addresses(value) {
  return value.split(SPLIT).map((part) => part.trim()).filter(Boolean);
}

function replySubject(subject) {
  const bare = (subject || "").replace(/^\s*((re|fwd?|aw|sv)\s*:\s*)+/i, "");
  return bare ? `Re: ${bare}` : "(no subject)";
}

export class EmailFields {
  constructor(form) {
    this.to = el("input", { type: "text", name: "email-to", autocomplete: "off", "aria-label": "To" });
    this.cc = el("input", { type: "text", name: "email-cc", autocomplete: "off", "aria-label": "Cc", placeholder: "Add Cc" });
    this.subject = el("span", { class: "email-subject" });
    this.box = el(
      "div",
      { class: "email-fields", hidden: true },
      el("span", { class: "email-says", text: "Sends an email" }),
      el("label", {}, "To ", this.to),
      el("label", {}, "Cc ", this.cc),
      el("span", {}, "Subject: ", this.subject),
    );
    form.querySelector("textarea").before(this.box);
    this.active = false;
  }

  use(conversation) {
    this.active = conversation.channel && conversation.channel.kind === "email";
    this.box.hidden = !this.active;
    if (!this.active) return;
    const customer = conversation.contact && conversation.contact.email;
    this.to.value = "";
    this.cc.value = "";
    this.to.placeholder = customer ? `${customer} (the customer)` : "the customer's address";
    this.customer = customer || "";
    this.subject.textContent = replySubject(conversation.subject);
  }

  // Extra fields for a reply (not a note); throws with a message for the manager.
  payload(kind) {
    if (!this.active || kind === "note") return {};
    const to = addresses(this.to.value);
    const cc = addresses(this.cc.value);
    if (!to.length && !cc.length) return {};
    if (!to.length && this.customer) to.push(this.customer);
    if (!to.length) throw new Error("Add a To address");
    return { email: { to, cc } };
  }
}
