"""Merge and split (issue 14 item 6): two conversations of one customer become one, two
contacts that are the same person become one, a conversation is split from a message on.

Correctness lives in the transaction:

- the two rows (conversations or contacts) are locked FOR UPDATE in id order, then read again
  under the lock: concurrent merges of one pair, or A→B while B→A, are serialised and the
  second finds the first's result (a 409 `MergeConflict`), never half of it. The partial
  unique constraints on `Merge` (one standing merge per source) back it up.
- what moved is recorded on the `Merge` row (message, mention, identity, order, label ids,
  the values replaced), and an undo — within MERGE_UNDO_HOURS — moves exactly those back.
- every change is a `conversation.updated` event (the merged-away row arrives archived with
  `merged_into_id`, which drops it from the list) and an activity line on both
  conversations, written in the same transaction.

The survivor of a conversation merge is the conversation named in the URL; the other keeps
its row (archived, `merged_into`), and the customer's next message on its chat is stored in
the survivor (ingest follows `merged_into`). Conversations on different channels may be merged
(the same person on WhatsApp and email): replies go out through the survivor's channel.
Conversations of different contacts merge only with `merge_contacts=True`, which first merges
the other contact into the survivor's (a contact merge of its own, undone on its own).
"""

from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Contact, ContactLabel, Order

from .. import events
from ..counts import state_of
from ..models import (
    ContactIdentity,
    Conversation,
    ConversationLabel,
    Mention,
    Merge,
    Message,
)
from ..serializers import contact_payload
from .activity import actor_name, record_activity, record_audit
from .conversations import record_conversation_updated
from .ingest import preview_text
from .labels import load_labels


class MergeRejected(Exception):
    """Bad input (400): the text says what is wrong."""

    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.field = field


class MergeConflict(Exception):
    """The rows are not in a state that allows it (409): already merged, too late to undo."""


def undo_hours() -> int:
    return settings.SWITCHBOARD.get("MERGE_UNDO_HOURS", 24)


def _retrying(function):
    """Run `function` in a transaction, again once or twice when PostgreSQL picked it as a
    deadlock victim (an ingest locking a merged-away chat, then its survivor)."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                return function()
        except OperationalError as exc:
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) not in ("40P01", "40001"):
                raise
    raise AssertionError("unreachable")


def _lock_conversations(ids: list[int]) -> dict[int, Conversation]:
    found = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
        .filter(pk__in=ids)
        .order_by("pk")  # one lock order for every merge, split and undo: no deadlocks
    )
    return {conversation.pk: conversation for conversation in found}


def _lock_contacts(ids: list[int]) -> dict[int, Contact]:
    found = Contact.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    return {contact.pk: contact for contact in found}


def _summarise(conversation: Conversation) -> None:
    """last_message_at, preview and last_inbound_at from the messages the conversation has
    now (after messages moved in or out); saved by the caller."""
    messages = Message.objects.filter(conversation_id=conversation.pk)
    newest = (
        messages.exclude(kind__in=[Message.Kind.NOTE, Message.Kind.SYSTEM])
        .order_by("-created_at", "-id")
        .only("content", "kind", "created_at")
        .first()
    )
    if newest is not None:
        conversation.last_message_at = newest.created_at
        conversation.last_message_preview = preview_text(newest)
    inbound = (
        messages.filter(direction=Message.Direction.INBOUND)
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    conversation.last_inbound_at = inbound


_SUMMARY = ["last_message_at", "last_message_preview", "last_inbound_at", "unread_count"]


def _save(conversation: Conversation, fields: list[str]) -> None:
    conversation.version += 1  # under our row lock
    conversation.save(update_fields=[*fields, "version", "updated_at"])


def _ref(conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "channel": conversation.channel.get_kind_display(),
        "contact": str(conversation.contact),
    }


# --- conversations ---------------------------------------------------------------------------


@dataclass
class MergeResult:
    survivor: Conversation
    merged: Conversation
    merge: Merge
    contact_merge: Merge | None = None


def merge_conversations(
    target_id: int, source_id: int, *, actor=None, merge_contacts: bool = False
) -> MergeResult:
    """Merge conversation `source_id` into `target_id`. The caller checked the user may see
    both (communications/access.py)."""
    if target_id == source_id:
        raise MergeRejected("a conversation cannot be merged into itself", field="conversation_id")
    return _retrying(lambda: _merge_conversations(target_id, source_id, actor, merge_contacts))


def _merge_conversations(target_id, source_id, actor, merge_contacts) -> MergeResult:
    locked = _lock_conversations([target_id, source_id])
    if source_id not in locked or target_id not in locked:
        missing = source_id if source_id not in locked else target_id
        raise MergeRejected(f"conversation {missing} not found", field="conversation_id")
    target, source = locked[target_id], locked[source_id]
    for conversation in (source, target):
        if conversation.merged_into_id is not None:
            raise MergeConflict(
                f"conversation {conversation.pk} was already merged into "
                f"conversation {conversation.merged_into_id}"
            )
    contact_merge = None
    if source.contact_id != target.contact_id:
        if not merge_contacts:
            raise MergeRejected(
                f"conversations {target.pk} and {source.pk} belong to different contacts "
                f"({target.contact} and {source.contact}); pass merge_contacts: true to merge "
                "the contacts too",
                field="merge_contacts",
            )
        contact_merge = _merge_contacts(target.contact_id, source.contact_id, actor)
        # The contact merge moved the source's conversations (this one too: a new version).
        source.refresh_from_db(fields=["contact", "version"])
        source.contact = Contact.objects.get(pk=target.contact_id)
        target.contact = source.contact

    now = timezone.now()
    counts_target, counts_source = state_of(target), state_of(source)
    message_ids = list(
        Message.objects.filter(conversation_id=source.pk)
        .order_by("id")
        .values_list("id", flat=True)
    )
    Message.objects.filter(pk__in=message_ids).update(conversation_id=target.pk)
    mention_ids = list(
        Mention.objects.filter(conversation_id=source.pk).values_list("id", flat=True)
    )
    if mention_ids:
        Mention.objects.filter(pk__in=mention_ids).update(conversation_id=target.pk)
    # Labels: the survivor gets the ones it lacks (the source keeps its own links).
    load_labels([target, source])
    have = {label.pk for label in target._loaded_labels}
    added = [label for label in source._loaded_labels if label.pk not in have]
    if added:
        ConversationLabel.objects.bulk_create(
            [ConversationLabel(conversation_id=target.pk, label=label) for label in added],
            ignore_conflicts=True,
        )
        target._loaded_labels = sorted(
            target._loaded_labels + added, key=lambda label: (label.name.lower(), label.pk)
        )
    # Conversations merged into the source earlier now point at the survivor (one hop for
    # ingest); their undo puts them back.
    repointed = list(
        Conversation.objects.filter(merged_into_id=source.pk).values_list("id", flat=True)
    )
    if repointed:
        Conversation.objects.filter(pk__in=repointed).update(merged_into_id=target.pk)

    moved = {
        "messages": message_ids,
        "mentions": mention_ids,
        "labels_added": [label.pk for label in added],
        "repointed": repointed,
        "source_before": {"is_archived": source.is_archived, "unread_count": source.unread_count},
        "target_unread_added": source.unread_count,
    }
    try:
        with transaction.atomic():  # the constraint's verdict, not the whole merge's
            merge = Merge.objects.create(
                kind=Merge.Kind.CONVERSATIONS,
                source_conversation=source,
                target_conversation=target,
                moved=moved,
                actor=actor if actor is not None and actor.pk else None,
                created_at=now,
                undo_until=now + timedelta(hours=undo_hours()),
            )
    except IntegrityError as exc:
        raise MergeConflict(f"conversation {source.pk} is already merged") from exc

    target.unread_count += source.unread_count
    _summarise(target)
    _save(target, _SUMMARY)
    # The merged-away row keeps its last message time and preview (where the archive lists it).
    source.merged_into = target
    source.merged_at = now
    source.is_archived = True
    source.unread_count = 0
    _save(source, ["unread_count", "merged_into", "merged_at", "is_archived"])

    after = {"merge_id": merge.pk, "undo_until": merge.undo_until.isoformat()}
    lines = record_activity(
        target,
        [("merged", {"conversation": _ref(source)}, {"into": target.pk, **after})],
        actor=actor,
    ) + record_activity(
        source,
        [("merged", {"conversation": _ref(source)}, {"into": target.pk, **after})],
        actor=actor,
    )
    # One INSERT, one broadcast: the survivor, the merged-away row (archived: the list drops
    # it), then the lines.
    record_conversation_updated(
        target, before=counts_target, also=[_updated(source, counts_source), *lines]
    )
    return MergeResult(survivor=target, merged=source, merge=merge, contact_merge=contact_merge)


def unmerge_conversation(source_id: int, *, actor=None) -> MergeResult:
    """Undo the standing merge of conversation `source_id` (the merged-away one): exactly what
    moved goes back. 409 once MERGE_UNDO_HOURS have passed, or while its survivor is itself
    merged away (undo that one first)."""
    return _retrying(lambda: _unmerge_conversation(source_id, actor))


def _unmerge_conversation(source_id, actor) -> MergeResult:
    merge = (
        Merge.objects.filter(source_conversation_id=source_id, undone_at__isnull=True)
        .order_by("-id")
        .first()
    )
    if merge is None:
        raise MergeConflict(f"conversation {source_id} is not merged into another")
    locked = _lock_conversations([source_id, merge.target_conversation_id])
    source, target = locked[source_id], locked[merge.target_conversation_id]
    merge = Merge.objects.select_for_update().get(pk=merge.pk)  # read again under the locks
    if merge.undone_at is not None:
        raise MergeConflict(f"the merge of conversation {source_id} was already undone")
    now = timezone.now()
    if now > merge.undo_until:
        raise MergeConflict(
            f"the merge of conversation {source_id} can no longer be undone "
            f"(only for {undo_hours()} hours)"
        )
    if target.merged_into_id is not None:
        raise MergeConflict(
            f"conversation {target.pk} was merged into conversation {target.merged_into_id} "
            "since: undo that merge first"
        )
    counts_target, counts_source = state_of(target), state_of(source)
    moved = merge.moved
    Message.objects.filter(pk__in=moved["messages"], conversation_id=target.pk).update(
        conversation_id=source.pk
    )
    if moved["mentions"]:
        Mention.objects.filter(pk__in=moved["mentions"], conversation_id=target.pk).update(
            conversation_id=source.pk
        )
    if moved["labels_added"]:
        ConversationLabel.objects.filter(
            conversation_id=target.pk, label_id__in=moved["labels_added"]
        ).delete()
    if moved["repointed"]:
        Conversation.objects.filter(pk__in=moved["repointed"], merged_into_id=target.pk).update(
            merged_into_id=source.pk
        )
    merge.undone_at = now
    merge.undone_by = actor if actor is not None and actor.pk else None
    merge.save(update_fields=["undone_at", "undone_by"])

    target.unread_count = max(0, target.unread_count - moved["target_unread_added"])
    _summarise(target)
    _save(target, _SUMMARY)
    source.merged_into = None
    source.merged_at = None
    source.is_archived = moved["source_before"]["is_archived"]
    source.unread_count = moved["source_before"]["unread_count"]
    _summarise(source)
    _save(source, [*_SUMMARY, "merged_into", "merged_at", "is_archived"])
    load_labels([target, source])

    entry = ("unmerged", {"into": target.pk}, {"conversation": _ref(source), "merge_id": merge.pk})
    lines = record_activity(target, [entry], actor=actor) + record_activity(
        source, [entry], actor=actor
    )
    record_conversation_updated(
        target, before=counts_target, also=[_updated(source, counts_source), *lines]
    )
    return MergeResult(survivor=target, merged=source, merge=merge)


# --- split -------------------------------------------------------------------------------------


def split_conversation(conversation_id: int, message_id, *, actor=None) -> Conversation:
    """Move the message `message_id` and every later one of the conversation into a new
    conversation (same channel, contact, subject, assignee, team, labels); returns the new one.
    The customer's next message on the chat still arrives in the original (its chat id)."""
    return _retrying(lambda: _split(conversation_id, message_id, actor))


def _split(conversation_id, message_id, actor) -> Conversation:
    locked = _lock_conversations([conversation_id])
    if conversation_id not in locked:
        raise MergeRejected(f"conversation {conversation_id} not found")
    original = locked[conversation_id]
    if original.merged_into_id is not None:
        raise MergeConflict(
            f"conversation {original.pk} was merged into conversation "
            f"{original.merged_into_id}: split that one"
        )
    try:
        message_id = int(message_id)
    except (TypeError, ValueError):
        raise MergeRejected("message_id must be a message id", field="message_id") from None
    pivot = (
        Message.objects.filter(pk=message_id, conversation_id=original.pk)
        .only("created_at")
        .first()
    )
    if pivot is None:
        raise MergeRejected(
            f"message {message_id} is not in conversation {original.pk}", field="message_id"
        )
    later = Message.objects.filter(conversation_id=original.pk).filter(
        Q(created_at__gt=pivot.created_at) | Q(created_at=pivot.created_at, id__gte=pivot.pk)
    )
    earlier = Message.objects.filter(conversation_id=original.pk).exclude(pk__in=later.values("pk"))
    if not earlier.exists():
        raise MergeRejected(
            f"message {message_id} is the conversation's first: splitting there would move "
            "every message and leave an empty conversation",
            field="message_id",
        )
    counts_original = state_of(original)
    now = timezone.now()
    new = Conversation.objects.create(
        channel=original.channel,
        contact=original.contact,
        external_id=f"{original.external_id}#split-{original.pk}-{message_id}"[:255],
        subject=original.subject,
        status=Conversation.Status.OPEN,
        assignee=original.assignee,
        team_id=original.team_id,
        last_message_at=pivot.created_at,
    )
    moved_ids = list(later.values_list("id", flat=True))
    inbound_moved = Message.objects.filter(
        pk__in=moved_ids, direction=Message.Direction.INBOUND
    ).count()
    Message.objects.filter(pk__in=moved_ids).update(conversation_id=new.pk)
    Mention.objects.filter(conversation_id=original.pk, message_id__in=moved_ids).update(
        conversation_id=new.pk
    )
    load_labels([original])
    if original._loaded_labels:
        ConversationLabel.objects.bulk_create(
            [
                ConversationLabel(conversation_id=new.pk, label=label)
                for label in original._loaded_labels
            ]
        )
    new._loaded_labels = list(original._loaded_labels)
    # The newest unread messages are the customer's latest: those that moved stay unread.
    unread_moved = min(original.unread_count, inbound_moved)
    new.unread_count = unread_moved
    original.unread_count -= unread_moved
    _summarise(original)
    _save(original, _SUMMARY)
    _summarise(new)
    new.save(update_fields=_SUMMARY)
    new.created_at = new.created_at or now

    entry_after = {"conversation": new.pk, "message_id": message_id, "messages": len(moved_ids)}
    lines = record_activity(
        original, [("split", {"from": original.pk}, entry_after)], actor=actor
    ) + record_activity(new, [("split", {"from": original.pk}, entry_after)], actor=actor)
    created = (
        events.CONVERSATION_CREATED,
        new.channel_id,
        new.pk,
        _payload(new),
        _created_counts(new),
    )
    record_conversation_updated(original, before=counts_original, also=[created, *lines])
    return new


def _updated(conversation: Conversation, before) -> tuple:
    """The `conversation.updated` event of a second conversation changed with the first
    (recorded in the first's INSERT)."""
    from ..counts import counts_delta, views_move

    after = state_of(conversation)
    return (
        events.CONVERSATION_UPDATED,
        conversation.channel_id,
        conversation.pk,
        _payload(conversation),
        counts_delta(before, after),
        views_move(before, after, conversation.pk),
    )


def _payload(conversation: Conversation) -> dict:
    from ..serializers import conversation_payload

    return conversation_payload(conversation)


def _created_counts(conversation: Conversation):
    from ..counts import counts_delta

    return counts_delta(None, state_of(conversation))


# --- contacts ----------------------------------------------------------------------------------

# Contact fields a merge fills on the survivor where it has none (and empties again on undo).
_FILLED = ("name", "phone", "email", "username", "avatar_url")


def merge_contacts(target_id: int, source_id: int, *, actor=None) -> Merge:
    """Merge contact `source_id` into `target_id`: its identities, conversations, messages'
    sender, orders and labels move; blank details are filled; notes are appended."""
    if target_id == source_id:
        raise MergeRejected("a contact cannot be merged into itself", field="contact_id")
    return _retrying(lambda: _merge_contacts(target_id, source_id, actor))


def _merge_contacts(target_id, source_id, actor) -> Merge:
    locked = _lock_contacts([target_id, source_id])
    if source_id not in locked or target_id not in locked:
        missing = source_id if source_id not in locked else target_id
        raise MergeRejected(f"contact {missing} not found", field="contact_id")
    target, source = locked[target_id], locked[source_id]
    for contact in (source, target):
        if contact.merged_into_id is not None:
            raise MergeConflict(
                f"contact {contact.pk} was already merged into contact {contact.merged_into_id}"
            )
    now = timezone.now()
    identity_ids = list(
        ContactIdentity.objects.filter(contact_id=source.pk).values_list("id", flat=True)
    )
    ContactIdentity.objects.filter(pk__in=identity_ids).update(contact_id=target.pk)
    conversation_ids = list(
        Conversation.objects.filter(contact_id=source.pk)
        .order_by("id")
        .values_list("id", flat=True)
    )
    sender_ids = list(
        Message.objects.filter(sender_contact_id=source.pk).values_list("id", flat=True)
    )
    Message.objects.filter(pk__in=sender_ids).update(sender_contact_id=target.pk)
    order_ids = list(Order.objects.filter(contact_id=source.pk).values_list("id", flat=True))
    Order.objects.filter(pk__in=order_ids).update(contact_id=target.pk)
    have = set(ContactLabel.objects.filter(contact_id=target.pk).values_list("label_id", flat=True))
    labels_added = [
        label_id
        for label_id in ContactLabel.objects.filter(contact_id=source.pk).values_list(
            "label_id", flat=True
        )
        if label_id not in have
    ]
    ContactLabel.objects.bulk_create(
        [ContactLabel(contact_id=target.pk, label_id=label_id) for label_id in labels_added],
        ignore_conflicts=True,
    )
    repointed = list(Contact.objects.filter(merged_into_id=source.pk).values_list("id", flat=True))
    if repointed:
        Contact.objects.filter(pk__in=repointed).update(merged_into_id=target.pk)
    filled = {}
    for field in _FILLED:
        if not getattr(target, field) and getattr(source, field):
            filled[field] = getattr(source, field)
            setattr(target, field, getattr(source, field))
    notes_before = target.notes
    if source.notes.strip() and source.notes.strip() not in target.notes:
        target.notes = f"{target.notes}\n\n{source.notes}".strip() if target.notes else source.notes
    target.save(update_fields=[*filled, "notes", "updated_at"])
    source.merged_into = target
    source.merged_at = now
    source.save(update_fields=["merged_into", "merged_at", "updated_at"])
    moved = {
        "identities": identity_ids,
        "conversations": conversation_ids,
        "sender_messages": sender_ids,
        "orders": order_ids,
        "labels_added": labels_added,
        "repointed": repointed,
        "filled": sorted(filled),
        "notes_before": notes_before,
    }
    try:
        with transaction.atomic():
            merge = Merge.objects.create(
                kind=Merge.Kind.CONTACTS,
                source_contact=source,
                target_contact=target,
                moved=moved,
                actor=actor if actor is not None and actor.pk else None,
                created_at=now,
                undo_until=now + timedelta(hours=undo_hours()),
            )
    except IntegrityError as exc:
        raise MergeConflict(f"contact {source.pk} is already merged") from exc
    record_audit(
        "merged",
        subject_type="contact",
        subject_id=target.pk,
        subject_repr=str(target),
        before={"contact": {"id": source.pk, "name": str(source)}},
        after={
            "into_contact": {"id": target.pk, "name": str(target)},
            "merge_id": merge.pk,
            "undo_until": merge.undo_until.isoformat(),
            "moved": _sizes(moved),
        },
        actor=actor,
    )
    _moved_conversations_changed(
        conversation_ids,
        target,
        (
            "merged",
            {"contact": {"id": source.pk, "name": str(source)}},
            {
                "into_contact": {"id": target.pk, "name": str(target)},
                "merge_id": merge.pk,
                "undo_until": merge.undo_until.isoformat(),
            },
        ),
        actor,
        new_contact_id=target.pk,
    )
    return merge


def unmerge_contact(source_id: int, *, actor=None) -> Merge:
    """Undo the standing merge of contact `source_id` into another, within the undo window."""
    return _retrying(lambda: _unmerge_contact(source_id, actor))


def _unmerge_contact(source_id, actor) -> Merge:
    merge = (
        Merge.objects.filter(source_contact_id=source_id, undone_at__isnull=True)
        .order_by("-id")
        .first()
    )
    if merge is None:
        raise MergeConflict(f"contact {source_id} is not merged into another")
    locked = _lock_contacts([source_id, merge.target_contact_id])
    source, target = locked[source_id], locked[merge.target_contact_id]
    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise MergeConflict(f"the merge of contact {source_id} was already undone")
    now = timezone.now()
    if now > merge.undo_until:
        raise MergeConflict(
            f"the merge of contact {source_id} can no longer be undone "
            f"(only for {undo_hours()} hours)"
        )
    if target.merged_into_id is not None:
        raise MergeConflict(
            f"contact {target.pk} was merged into contact {target.merged_into_id} since: "
            "undo that merge first"
        )
    moved = merge.moved
    ContactIdentity.objects.filter(pk__in=moved["identities"], contact_id=target.pk).update(
        contact_id=source.pk
    )
    Message.objects.filter(pk__in=moved["sender_messages"], sender_contact_id=target.pk).update(
        sender_contact_id=source.pk
    )
    Order.objects.filter(pk__in=moved["orders"], contact_id=target.pk).update(contact_id=source.pk)
    ContactLabel.objects.filter(contact_id=target.pk, label_id__in=moved["labels_added"]).delete()
    if moved["repointed"]:
        Contact.objects.filter(pk__in=moved["repointed"], merged_into_id=target.pk).update(
            merged_into_id=source.pk
        )
    for field in moved["filled"]:
        setattr(target, field, "")
    target.notes = moved["notes_before"]
    target.save(update_fields=[*moved["filled"], "notes", "updated_at"])
    source.merged_into = None
    source.merged_at = None
    source.save(update_fields=["merged_into", "merged_at", "updated_at"])
    merge.undone_at = now
    merge.undone_by = actor if actor is not None and actor.pk else None
    merge.save(update_fields=["undone_at", "undone_by"])
    record_audit(
        "unmerged",
        subject_type="contact",
        subject_id=source.pk,
        subject_repr=str(source),
        before={"into_contact": {"id": target.pk, "name": str(target)}},
        after={"contact": {"id": source.pk, "name": str(source)}, "merge_id": merge.pk},
        actor=actor,
    )
    _moved_conversations_changed(
        [
            pk
            for pk in moved["conversations"]
            if Conversation.objects.filter(pk=pk, contact_id=target.pk).exists()
        ],
        source,
        (
            "unmerged",
            {"into_contact": {"id": target.pk, "name": str(target)}},
            {"contact": {"id": source.pk, "name": str(source)}, "merge_id": merge.pk},
        ),
        actor,
        new_contact_id=source.pk,
    )
    return merge


def _moved_conversations_changed(ids, contact, entry, actor, *, new_contact_id) -> None:
    """The conversations that changed contact: locked in id order, moved, one activity line
    and one `conversation.updated` each; a `contact.updated` on the contact's channels."""
    channel_ids = set(
        Conversation.objects.filter(contact_id=contact.pk).values_list("channel_id", flat=True)
    )
    for conversation in _lock_conversations(ids).values():
        conversation.contact_id = new_contact_id
        conversation.contact = contact
        _save(conversation, ["contact"])
        load_labels([conversation])
        lines = record_activity(conversation, [entry], actor=actor)
        record_conversation_updated(conversation, also=lines)
        channel_ids.add(conversation.channel_id)
    payload = contact_payload(contact)
    events.record_events(
        [(events.CONTACT_UPDATED, channel_id, None, payload) for channel_id in sorted(channel_ids)]
    )


def _sizes(moved: dict) -> dict:
    return {key: len(value) for key, value in moved.items() if isinstance(value, list)}


# --- duplicate suggestions -------------------------------------------------------------------


def e164(phone: str) -> str | None:
    """`phone` as E.164 ("+4915123456789"), or None when it is not a possible number. Without
    a "+" the number is read in PHONE_DEFAULT_REGION (when set)."""
    phone = (phone or "").strip()
    if not phone:
        return None
    region = settings.SWITCHBOARD.get("PHONE_DEFAULT_REGION") or None
    try:
        parsed = phonenumbers.parse(
            phone if phone.startswith("+") or region else f"+{phone}", region
        )
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def same_phone(a: str, b: str) -> bool:
    """Whether two written numbers are the same phone: equal in E.164, or one written without
    its country code (and no default region) matching the other's national number."""
    ea, eb = e164(a), e164(b)
    if ea and ea == eb:
        return True
    for full, bare in ((a, b), (b, a)):
        if not full.strip().startswith("+") or bare.strip().startswith("+"):
            continue
        try:
            parsed = phonenumbers.parse(full.strip(), None)
        except phonenumbers.NumberParseException:
            continue
        digits = "".join(ch for ch in bare if ch.isdigit()).lstrip("0")
        national = str(parsed.national_number)
        if digits in (national, f"{parsed.country_code}{national}"):
            return True
    return False


__all__ = [
    "MergeConflict",
    "MergeRejected",
    "MergeResult",
    "actor_name",
    "e164",
    "merge_contacts",
    "merge_conversations",
    "same_phone",
    "split_conversation",
    "unmerge_contact",
    "unmerge_conversation",
]
