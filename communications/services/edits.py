"""Changes to messages that already exist: edits, deletions for everyone, reactions.

Provider-neutral: a provider names the message by its channel and its own id (the
`external_id` the ingest path stored). Each change is idempotent — applying the same edit,
redaction or reaction twice (two delivery paths, a redelivered webhook) changes nothing the
second time and records no second event — and records `message.updated` after commit.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .. import events
from ..models import Conversation, Message, RealtimeEvent
from ..serializers import message_payload


def _locked(channel_id: int, external_id: str) -> Message | None:
    return (
        Message.objects.select_for_update()
        .filter(channel_id=channel_id, external_id=external_id)
        .first()
    )


def _record(message: Message) -> None:
    message.version += 1  # the row is locked (`_locked`): strictly increasing
    message.save()
    events.record_event(
        events.MESSAGE_UPDATED,
        channel_id=message.channel_id,
        conversation_id=message.conversation_id,
        payload=message_payload(message),
    )


def apply_edit(
    *,
    channel_id: int,
    external_id: str,
    content: str,
    edit_id: str = "",
    edited_at: datetime | None = None,
) -> bool:
    """Replace the text of a message; an older edit arriving late does not win."""
    with transaction.atomic():
        message = _locked(channel_id, external_id)
        if message is None or message.is_deleted:
            return False
        edits = message.metadata.setdefault("edits", [])
        if edit_id and any(e.get("id") == edit_id for e in edits):
            return False
        stamp = (edited_at or timezone.now()).isoformat()
        if edits and max(e.get("at", "") for e in edits) > stamp:
            edits.append({"id": edit_id, "at": stamp, "superseded": True})
            message.version += 1
            message.save(update_fields=["metadata", "version", "updated_at"])
            return False
        edits.append({"id": edit_id, "at": stamp, "previous": message.content})
        message.content = content
        message.is_edited = True
        _record(message)
    return True


def apply_redaction(*, channel_id: int, external_id: str, redaction_id: str = "") -> bool:
    """Deleted for everyone: the text is gone, the row stays so the thread shows the gap.

    Gone means everywhere we keep it: the content, the previous texts of its edits, the
    conversation's preview when it was the last message, and the copies in the realtime
    resume log (a page resuming from an older event id must not receive the text either).
    The id may also name a reaction: then that reaction is taken back.
    """
    with transaction.atomic():
        message = _locked(channel_id, external_id)
        if message is not None:
            if message.is_deleted:
                return False
            _wipe(message, redaction_id)
            return True
        target = (
            Message.objects.select_for_update()
            .filter(channel_id=channel_id, metadata__reaction_events__has_key=external_id)
            .first()
        )
        if target is None:
            return False
        sender = target.metadata["reaction_events"].pop(external_id)
        reactions = target.metadata.get("reactions", {})
        if reactions.get(sender, {}).get("event_id") == external_id:
            reactions.pop(sender)
        _record(target)
    return True


def _wipe(message: Message, redaction_id: str) -> None:
    message.is_deleted = True
    message.content = ""
    message.metadata.pop("edits", None)
    message.metadata["deleted_by"] = redaction_id
    _record(message)
    payload = message_payload(message)
    # Events about a message are never older than the message (created_at is indexed).
    RealtimeEvent.objects.filter(
        created_at__gte=message.created_at,
        conversation_id=message.conversation_id,
        type__startswith="message.",
        payload__id=message.pk,
    ).update(payload=payload)
    _forget_preview(message)


def _forget_preview(message: Message) -> None:
    """The conversation's preview quoted this message if it is still the last one."""
    from .conversations import record_conversation_updated
    from .ingest import preview_text

    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee")
        .get(pk=message.conversation_id)
    )
    last = (
        Message.objects.filter(conversation_id=conversation.pk)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if last != message.pk:
        return
    conversation.last_message_preview = preview_text(message)
    conversation.save(update_fields=["last_message_preview", "updated_at"])
    record_conversation_updated(conversation)  # only the preview changed: no count moves


def apply_reaction(
    *, channel_id: int, external_id: str, sender: str, key: str, reaction_id: str = ""
) -> bool:
    """One reaction per sender per message (WhatsApp's rule); a new one replaces the old, an
    empty `key` takes the sender's reaction back (Messenger's "unreact")."""
    with transaction.atomic():
        message = _locked(channel_id, external_id)
        if message is None:
            return False
        reactions = message.metadata.setdefault("reactions", {})
        current = reactions.get(sender)
        if not key:
            if current is None:
                return False
            reactions.pop(sender)
            _record(message)
            return True
        if current and current.get("key") == key:
            return False
        reactions[sender] = {"key": key, "event_id": reaction_id}
        if reaction_id:
            message.metadata.setdefault("reaction_events", {})[reaction_id] = sender
        _record(message)
    return True
