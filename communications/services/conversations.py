"""Writes to a conversation other than messages: status, assignment, archive, read."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Team

from .. import events
from ..counts import CountState, counts_delta, state_of
from ..models import Conversation
from ..serializers import conversation_payload


class ConversationChangeRejected(Exception):
    """The change names something that does not exist or is not allowed; text says which.

    `field` names the input at fault ("assignee_id", "team_id", "snoozed_until")."""

    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.field = field


def assignee_rejection(conversation: Conversation, user) -> str | None:
    """Why `user` cannot be assigned `conversation`, or None when they can: only an active
    superuser or a member of a team the conversation's channel is attached to (someone who
    can see it) may be assigned."""
    if user is None or not user.is_active:
        return "is not an active user"
    if user.is_superuser:
        return None
    if not Team.objects.filter(members=user, channels=conversation.channel_id).exists():
        return "is not a member of a team of this conversation's channel"
    return None


def team_rejection(conversation: Conversation, team_id: int) -> str | None:
    """Why team `team_id` cannot own `conversation`: it must be attached to its channel."""
    if not Team.objects.filter(pk=team_id).exists():
        return "is not a team"
    if not Team.objects.filter(pk=team_id, channels=conversation.channel_id).exists():
        return "is not a team of this conversation's channel"
    return None


def update_conversation(conversation: Conversation, *, changes: dict) -> Conversation:
    """Apply status / snooze / assignee / team / archive changes and tell every viewer.

    `conversation` must be row-locked by the caller (`access_conversation_by_id(...,
    for_update=True)`): the event's payload is built from it and must be the row's state."""
    before = state_of(conversation)
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
        raise ConversationChangeRejected(
            "snoozed_until is required to snooze a conversation", field="snoozed_until"
        )
    if "assignee_id" in changes:
        assignee_id = changes["assignee_id"]
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id).first()
            reason = assignee_rejection(conversation, assignee)
            if reason:
                raise ConversationChangeRejected(
                    f"assignee_id {assignee_id} {reason}", field="assignee_id"
                )
            conversation.assignee = assignee
        else:
            conversation.assignee = None
        fields.append("assignee")
    if "team_id" in changes:
        team_id = changes["team_id"]
        reason = team_rejection(conversation, team_id) if team_id is not None else None
        if reason:
            raise ConversationChangeRejected(f"team_id {team_id} {reason}", field="team_id")
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
        record_conversation_updated(conversation, before=before)
    return conversation


def bulk_update_conversations(conversation_ids: list[int], **values) -> int:
    """The admin's bulk actions: one UPDATE, then one event per conversation for the inbox."""
    with transaction.atomic():
        # Their states before, locked until we commit, for the counts' deltas.
        before = {
            c.pk: state_of(c)
            for c in Conversation.objects.select_for_update()
            .filter(pk__in=conversation_ids)
            .only("status", "is_archived", "assignee_id", "unread_count")
        }
        count = Conversation.objects.filter(pk__in=conversation_ids).update(
            **values, version=F("version") + 1, updated_at=timezone.now()
        )
        # Read after our UPDATE, in its transaction: the rows as they are, locked by us.
        for conversation in Conversation.objects.filter(pk__in=conversation_ids).select_related(
            "contact", "channel", "assignee"
        ):
            record_conversation_updated(conversation, before=before.get(conversation.pk))
    return count


def mark_read(conversation: Conversation) -> Conversation:
    """`conversation` must be row-locked by the caller, as for `update_conversation`: the
    payload is built from it."""
    if conversation.unread_count == 0:
        return conversation
    before = state_of(conversation)
    with transaction.atomic(savepoint=False):  # the caller's, which holds the lock
        conversation.unread_count = 0
        conversation.version += 1
        conversation.save(update_fields=["unread_count", "version", "updated_at"])
        record_conversation_updated(conversation, before=before)
    return conversation


def record_conversation_updated(conversation: Conversation, *, before: CountState | None) -> None:
    """`conversation.updated` for every viewer, after commit (contact, channel and assignee
    select_related), with how it moved the counts since `before` (the row's state before the
    change, read under the same lock)."""
    events.record_event(
        events.CONVERSATION_UPDATED,
        channel_id=conversation.channel_id,
        conversation_id=conversation.pk,
        payload=conversation_payload(conversation),
        counts=counts_delta(before, state_of(conversation)),
    )
