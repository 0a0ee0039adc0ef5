"""The activity log: one row per change to a conversation, written in the change's transaction.

Only the services that make a change call `record_activity` (conversations.py, labels.py), so
every path — the page, the API, the admin — writes the same lines. Each line is also a
realtime `activity.created` event on the conversation's channel, so open threads show it."""

from django.utils import timezone

from crm.bulk_sql import insert_rows

from ..models import Activity, Conversation
from ..serializers import _user_name, activity_payload

ACTIVITY_CREATED = "activity.created"


def actor_name(actor) -> str:
    return _user_name(actor) if actor is not None else ""


def user_ref(user) -> dict | None:
    return {"id": user.pk, "name": _user_name(user)} if user is not None else None


def record_activity(
    conversation: Conversation, entries: list[tuple[str, dict, dict]], *, actor=None
) -> list[tuple]:
    """Store (verb, before, after) lines for `conversation`; returns their `activity.created`
    events for the caller to record with the change's own (one INSERT, one broadcast). Must
    run inside the transaction of the change."""
    if not entries:
        return []
    now = timezone.now()
    rows = [
        Activity(
            conversation_id=conversation.pk,
            actor=actor,
            actor_name=actor_name(actor),
            verb=verb,
            before=before,
            after=after,
            created_at=now,
        )
        for verb, before, after in entries
    ]
    insert_rows(rows)
    return [
        (ACTIVITY_CREATED, conversation.channel_id, conversation.pk, activity_payload(row))
        for row in rows
    ]
