"""Writes to a conversation other than messages: status, assignment, archive, read."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Team

from .. import events
from ..models import Conversation
from ..serializers import conversation_payload


class ConversationChangeRejected(Exception):
    """The change names something that does not exist or is not allowed; text says which."""


def update_conversation(conversation: Conversation, *, changes: dict) -> Conversation:
    """Apply status / snooze / assignee / team / archive changes and tell every viewer.

    `conversation` must be row-locked by the caller (`access_conversation_by_id(...,
    for_update=True)`): the event's payload is built from it and must be the row's state."""
    fields = []
    if "status" in changes:
        conversation.status = changes["status"]
        fields.append("status")
        if conversation.status != Conversation.Status.SNOOZED:
            conversation.snoozed_until = None
            fields.append("snoozed_until")
    if "snoozed_until" in changes and conversation.status == Conversation.Status.SNOOZED:
        conversation.snoozed_until = changes["snoozed_until"]
        fields.append("snoozed_until")
    if conversation.status == Conversation.Status.SNOOZED and conversation.snoozed_until is None:
        raise ConversationChangeRejected("snoozed_until is required to snooze a conversation")
    if "assignee_id" in changes:
        assignee_id = changes["assignee_id"]
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
            if assignee is None:
                raise ConversationChangeRejected(f"assignee_id {assignee_id} is not an active user")
            conversation.assignee = assignee
        else:
            conversation.assignee = None
        fields.append("assignee")
    if "team_id" in changes:
        team_id = changes["team_id"]
        if team_id is not None and not Team.objects.filter(pk=team_id).exists():
            raise ConversationChangeRejected(f"team_id {team_id} is not a team")
        conversation.team_id = team_id
        fields.append("team")
    if "is_archived" in changes:
        conversation.is_archived = changes["is_archived"]
        fields.append("is_archived")
    if not fields:
        return conversation
    with transaction.atomic():
        conversation.version += 1  # under the caller's row lock: strictly increasing
        conversation.save(update_fields=[*set(fields), "version", "updated_at"])
        _record_updated(conversation)
    return conversation


def bulk_update_conversations(conversation_ids: list[int], **values) -> int:
    """The admin's bulk actions: one UPDATE, then one event per conversation for the inbox."""
    with transaction.atomic():
        count = Conversation.objects.filter(pk__in=conversation_ids).update(
            **values, version=F("version") + 1, updated_at=timezone.now()
        )
        # Read after our UPDATE, in its transaction: the rows as they are, locked by us.
        for conversation in Conversation.objects.filter(pk__in=conversation_ids).select_related(
            "contact", "channel", "assignee"
        ):
            _record_updated(conversation)
    return count


def mark_read(conversation: Conversation) -> Conversation:
    """`conversation` must be row-locked by the caller, as for `update_conversation`: the
    payload is built from it."""
    if conversation.unread_count == 0:
        return conversation
    with transaction.atomic(savepoint=False):  # the caller's, which holds the lock
        conversation.unread_count = 0
        conversation.version += 1
        conversation.save(update_fields=["unread_count", "version", "updated_at"])
        _record_updated(conversation)
    return conversation


def _record_updated(conversation: Conversation) -> None:
    events.record_event(
        events.CONVERSATION_UPDATED,
        channel_id=conversation.channel_id,
        conversation_id=conversation.pk,
        payload=conversation_payload(conversation),
    )
