"""Labels on conversations and contacts: create, add, remove (one, or many conversations).

A conversation's labels change under its row lock, so any number of concurrent adds of one
label make one link, one activity line and one event; the unique (conversation, label)
constraint backs it. Every change bumps the conversation's version and is a
`conversation.updated` event (with `labels`) after commit.
"""

import dataclasses

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from crm.models import Label

from ..counts import state_of
from ..models import Conversation, ConversationLabel
from .activity import record_activity
from .conversations import record_conversation_updated

# Colours handed out to labels created without one (readable on white, distinct).
PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]


class LabelRejected(Exception):
    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.field = field


def label_create(*, name: str, color: str | None = None) -> tuple[Label, bool]:
    """The label named `name` (any case), created when there is none: (label, created)."""
    name = name.strip()
    if not name:
        raise LabelRejected("a label needs a name", field="name")
    existing = Label.objects.filter(name__iexact=name).first()
    if existing is not None:
        return existing, False
    color = color or PALETTE[Label.objects.count() % len(PALETTE)]
    try:
        with transaction.atomic():
            return Label.objects.create(name=name, color=color), True
    except IntegrityError:  # created meanwhile by someone else
        return Label.objects.get(name__iexact=name), False


def labels_by_id(ids: list[int], *, field: str) -> list[Label]:
    """The labels `ids` name; an unknown id is rejected naming `field`."""
    ids = list(dict.fromkeys(ids))
    found = {label.pk: label for label in Label.objects.filter(pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LabelRejected(f"no label with id {', '.join(map(str, missing))}", field=field)
    return [found[i] for i in ids]


def load_labels(conversations: list[Conversation]) -> None:
    """Give each conversation its labels (for its payload), in one query."""
    by_conversation: dict[int, list[Label]] = {c.pk: [] for c in conversations}
    links = (
        ConversationLabel.objects.filter(conversation_id__in=by_conversation)
        .select_related("label")
        .order_by(Lower("label__name"), "label_id")
    )
    for link in links:
        by_conversation[link.conversation_id].append(link.label)
    for conversation in conversations:
        conversation._loaded_labels = by_conversation[conversation.pk]


def change_conversation_labels(
    conversation: Conversation, *, add: list[Label] = (), remove: list[Label] = (), actor=None
) -> bool:
    """Add and remove labels; True when anything changed. `conversation` must be row-locked
    by the caller (as for update_conversation): the event's payload is built from it."""
    with transaction.atomic(savepoint=False):
        load_labels([conversation])
        before = list(conversation._loaded_labels)
        present = {label.pk for label in before}
        removing = {label.pk for label in remove} & present
        adding = [label for label in add if label.pk not in present and label.pk not in removing]
        adding = list({label.pk: label for label in adding}.values())
        if not adding and not removing:
            return False
        if removing:
            ConversationLabel.objects.filter(
                conversation_id=conversation.pk, label_id__in=removing
            ).delete()
        if adding:
            ConversationLabel.objects.bulk_create(
                [
                    ConversationLabel(conversation_id=conversation.pk, label=label)
                    for label in adding
                ]
            )
        # The state before, for the saved views' counts (a label filter): same row, old labels.
        counts_before = dataclasses.replace(
            state_of(conversation), label_ids=tuple(sorted(label.pk for label in before))
        )
        after = sorted(
            [label for label in before if label.pk not in removing] + adding,
            key=lambda label: (label.name.lower(), label.pk),
        )
        conversation._loaded_labels = after
        conversation.version += 1
        conversation.save(update_fields=["version", "updated_at"])
        lines = record_activity(
            conversation,
            [("labels", {"labels": _names(before)}, {"labels": _names(after)})],
            actor=actor,
        )
        record_conversation_updated(conversation, before=counts_before, also=lines)
    return True


def bulk_change_conversation_labels(
    conversation_ids: list[int], *, add: list[Label] = (), remove: list[Label] = (), actor=None
) -> int:
    """The list's and the admin's bulk labelling: each conversation locked (in id order, so
    two bulks never deadlock) and changed as one; returns how many changed."""
    changed = 0
    with transaction.atomic():
        conversations = list(
            Conversation.objects.filter(pk__in=conversation_ids)
            .select_related("contact", "channel", "assignee")
            .defer("channel__secrets")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        for conversation in conversations:
            changed += change_conversation_labels(conversation, add=add, remove=remove, actor=actor)
    return changed


def _names(labels) -> list[dict]:
    return [{"id": label.pk, "name": label.name, "color": label.color} for label in labels]
