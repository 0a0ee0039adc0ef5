"""The activity log, which is also the audit log: one row per change, written in the change's
transaction, with the before/after values of what changed.

A change to a conversation (status, assignee, team, archive, labels, auto-assignment) is a
line of its thread: `record_activity`, whose rows are also realtime `activity.created` events
on the conversation's channel. A change to something else (a contact edit, a channel's settings
and secrets, a user, a team) or a sign-in is `record_audit`: no conversation, a subject (type,
id, name at the time). Only the services and admin saves that make a change call these, so
every path writes the same rows. A secret's value is never given to them: only which keys
changed (`secret_keys_changed`)."""

from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

from crm.bulk_sql import insert_rows

from ..models import Activity, Conversation
from ..serializers import _user_name, activity_payload

ACTIVITY_CREATED = "activity.created"


def actor_name(actor) -> str:
    return _user_name(actor) if actor is not None else ""


def user_ref(user) -> dict | None:
    return {"id": user.pk, "name": _user_name(user)} if user is not None else None


def conversation_line(
    conversation: Conversation, verb: str, before: dict, after: dict, *, actor=None, now=None
) -> Activity:
    """An unsaved line of `conversation`'s thread (see `record_lines`)."""
    return Activity(
        conversation_id=conversation.pk,
        actor=actor,
        actor_name=actor_name(actor),
        verb=verb,
        subject_type=Activity.Subject.CONVERSATION,
        subject_id=conversation.pk,
        subject_repr=f"conversation #{conversation.pk}",
        before=before,
        after=after,
        created_at=now or timezone.now(),
    )


def record_lines(lines: list[Activity], *, channel_id: int) -> list[tuple]:
    """Store conversation lines (all of one channel) in one INSERT; returns their
    `activity.created` events for the caller to record with the change's own."""
    insert_rows(lines)
    return [
        (ACTIVITY_CREATED, channel_id, line.conversation_id, activity_payload(line))
        for line in lines
    ]


def record_activity(
    conversation: Conversation, entries: list[tuple[str, dict, dict]], *, actor=None
) -> list[tuple]:
    """Store (verb, before, after) lines for `conversation`; returns their `activity.created`
    events for the caller to record with the change's own (one INSERT, one broadcast). Must
    run inside the transaction of the change."""
    if not entries:
        return []
    now = timezone.now()
    lines = [
        conversation_line(conversation, verb, before, after, actor=actor, now=now)
        for verb, before, after in entries
    ]
    return record_lines(lines, channel_id=conversation.channel_id)


def record_audit(
    verb: str,
    *,
    subject_type: str,
    subject_id: int | None,
    subject_repr: str,
    before: dict,
    after: dict,
    actor=None,
) -> Activity:
    """Store one audit row about something other than a conversation (one INSERT). Must run
    inside the transaction of the change; never give it a secret's value."""
    row = Activity(
        actor=actor if actor is not None and actor.pk is not None else None,
        actor_name=actor_name(actor) if actor is not None else "",
        verb=verb,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_repr=subject_repr[:200],
        before=before,
        after=after,
        created_at=timezone.now(),
    )
    insert_rows([row])
    return row


def audit_value(value):
    """A form or model value as the audit log keeps it (JSON): objects by id and name."""
    if isinstance(value, models.Model):
        return {"id": value.pk, "name": str(value)}
    if isinstance(value, (models.QuerySet, list, tuple, set)):
        items = [audit_value(item) for item in value]
        return sorted(
            items, key=lambda item: str(item.get("id") if isinstance(item, dict) else item)
        )
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str, dict)):
        return value
    return str(value)
