// Merge and split (issue 14 item 6): the header's "Merge…" menu (the contact's other
// conversations and those of duplicate contacts), "Split here" on a message, "Undo merge" on
// a merge's activity line while it can be undone, and the duplicate contacts in the card.
// Each calls the API; what changed arrives as realtime events like any other change.

import { api } from "./api.js";
import { closePopover, popoverButton } from "./popover.js";
import { channelTag, contactName, el } from "./render.js";

// The header button: a menu listing what this conversation can be merged with.
export function mergeButton(conversation, { merged, toast }) {
  return popoverButton({
    label: "Merge another conversation into this one",
    text: "Merge…",
    className: "button small merge-action",
    build: () => {
      const menu = el("div", { class: "menu merge-menu" }, el("p", { class: "menu-label", role: "status", text: "Loading…" }));
      api
        .mergeCandidates(conversation.id)
        .then(({ results }) => {
          if (!results.length) {
            menu.replaceChildren(el("p", { class: "menu-label", text: "No other conversation of this customer or a duplicate contact." }));
            return;
          }
          menu.replaceChildren(
            el("p", { class: "menu-label", text: "Merge into this conversation:" }),
            ...results.map((candidate) => {
              const other = candidate.conversation;
              const who = candidate.same_contact
                ? ""
                : ` · ${contactName(other.contact)} (same ${candidate.reasons.join(" and ")})`;
              return el(
                "button",
                {
                  type: "button",
                  class: "menu-item merge-candidate",
                  dataset: { id: other.id },
                  onclick: async () => {
                    closePopover();
                    try {
                      const result = await api.merge(conversation.id, {
                        conversation_id: other.id,
                        merge_contacts: !candidate.same_contact,
                      });
                      merged(result);
                      toast(`Merged #${other.id} into this conversation. Undo from its line in the thread.`);
                    } catch (error) {
                      toast(`Could not merge: ${error.detail || error.message}`);
                    }
                  },
                },
                el("span", {}, channelTag(other.channel), ` #${other.id}${who}`),
                el("span", { class: "menu-hint", text: other.last_message_preview || "" }),
              );
            }),
          );
          menu.querySelector("button")?.focus();
        })
        .catch((error) => menu.replaceChildren(el("p", { class: "menu-label", role: "alert", text: `Could not load: ${error.detail || error.message}` })));
      return menu;
    },
  });
}

// "Undo merge" on a merge's line, while the merge can be undone.
export function undoButton(activity, { toast, done }) {
  if (activity.verb !== "merged") return null;
  const after = activity.after || {};
  const before = activity.before || {};
  if (!after.undo_until || Date.parse(after.undo_until) <= Date.now()) return null;
  const contactMerge = Boolean(before.contact);
  const sourceId = contactMerge ? before.contact.id : (before.conversation || {}).id;
  if (!sourceId) return null;
  return el("button", {
    type: "button",
    class: "link-button undo-merge",
    dataset: { mergeId: after.merge_id },
    text: "Undo merge",
    onclick: async (event) => {
      event.currentTarget.disabled = true;
      try {
        await (contactMerge ? api.unmergeContact(sourceId) : api.unmerge(sourceId));
        toast("The merge was undone.");
        done?.();
      } catch (error) {
        toast(`Could not undo the merge: ${error.detail || error.message}`);
        event.currentTarget.disabled = false;
      }
    },
  });
}

// The card's "Possible duplicates": contacts with the same phone or email, each with Merge.
export function duplicatesSection(contact, { toast, merged }) {
  const section = el("section", { class: "duplicates", "aria-label": "Possible duplicate contacts", hidden: true });
  api
    .duplicates(contact.id)
    .then(({ results }) => {
      if (!results.length) return;
      section.hidden = false;
      section.replaceChildren(
        el("h4", { text: "Possible duplicates" }),
        el(
          "ul",
          { class: "duplicate-list" },
          ...results.map(({ contact: twin, reasons }) =>
            el(
              "li",
              { class: "duplicate", dataset: { id: twin.id } },
              el("span", { class: "duplicate-name", text: `${contactName(twin)} · same ${reasons.join(" and ")}` }),
              el("button", {
                type: "button",
                class: "button small merge-contact",
                "aria-label": `Merge ${contactName(twin)} into ${contactName(contact)}`,
                text: "Merge",
                onclick: async () => {
                  try {
                    await api.mergeContacts(contact.id, { contact_id: twin.id });
                    toast(`Merged ${contactName(twin)} into ${contactName(contact)}.`);
                    merged?.();
                  } catch (error) {
                    toast(`Could not merge the contacts: ${error.detail || error.message}`);
                  }
                },
              }),
            ),
          ),
        ),
      );
    })
    .catch(() => {
      /* suggestions only: the card works without them */
    });
  return section;
}

// "Split here" on a message (not the first): it and the later ones become a new conversation.
export function splitButton(message, { split }) {
  return el("button", {
    type: "button",
    class: "link-button split-action",
    title: "Move this message and the later ones to a new conversation",
    text: "Split here",
    onclick: () => split(message),
  });
}
