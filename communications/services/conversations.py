"""Writes to a conversation other than messages: status, assignment, archive, read."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Team

from .. import events
from ..counts import counts_delta, state_of, views_move, with_label_ids
from ..models import Conversation
from ..serializers import conversation_payload
from .activity import record_activity, user_ref


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


def update_conversation(conversation: Conversation, *, changes: dict, actor=None) -> Conversation:
    """Apply status / snooze / assignee / team / archive changes and tell every viewer; each
    real change is an activity line by `actor` (None: the system).

    `conversation` must be row-locked by the caller (`access_conversation_by_id(...,
    for_update=True)`): the event's payload is built from it and must be the row's state."""
    before = _tracked(conversation)
    counts_before = state_of(conversation)
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
        lines = record_activity(
            conversation, activity_entries(before, _tracked(conversation)), actor=actor
        )
        record_conversation_updated(conversation, before=counts_before, also=lines)
    return conversation


def bulk_update_conversations(conversation_ids: list[int], *, actor=None, **values) -> int:
    """The admin's bulk actions: one UPDATE, then one event (and the activity lines of what
    really changed) per conversation for the inbox."""
    with transaction.atomic():
        locked = (
            with_label_ids(Conversation.objects.filter(pk__in=conversation_ids))
            .select_related("assignee", "team")
            .select_for_update(of=("self",))
            .order_by("pk")  # one lock order for every caller: no deadlocks between bulks
        )
        before, counts_before = {}, {}
        for conversation in locked:
            before[conversation.pk] = _tracked(conversation)
            counts_before[conversation.pk] = state_of(conversation)  # for the counts' deltas
        if "status" in values and values["status"] != Conversation.Status.SNOOZED:
            values = {**values, "snoozed_until": None}
        count = Conversation.objects.filter(pk__in=conversation_ids).update(
            **values, version=F("version") + 1, updated_at=timezone.now()
        )
        # Read after our UPDATE, in its transaction: the rows as they are, locked by us.
        for conversation in Conversation.objects.filter(pk__in=conversation_ids).select_related(
            "contact", "channel", "assignee", "team"
        ):
            entries = activity_entries(before.get(conversation.pk, {}), _tracked(conversation))
            lines = record_activity(conversation, entries, actor=actor)
            record_conversation_updated(
                conversation, before=counts_before.get(conversation.pk), also=lines
            )
    return count


def _tracked(conversation: Conversation) -> dict:
    """What the activity log follows, with names (the lines read without joins)."""
    team = conversation.team if conversation.team_id is not None else None
    return {
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_until.isoformat()
        if conversation.snoozed_until
        else None,
        "assignee": user_ref(conversation.assignee) if conversation.assignee_id else None,
        "team": {"id": team.pk, "name": team.name} if team is not None else None,
        "is_archived": conversation.is_archived,
    }


def activity_entries(before: dict, after: dict) -> list[tuple[str, dict, dict]]:
    """(verb, before, after) for each tracked field that changed."""
    if not before:
        return []
    entries = []
    snoozed = after["status"] == Conversation.Status.SNOOZED
    if snoozed and (
        before["status"] != after["status"] or before["snoozed_until"] != after["snoozed_until"]
    ):
        entries.append(
            (
                "snoozed",
                {"status": before["status"], "snoozed_until": before["snoozed_until"]},
                {"status": after["status"], "snoozed_until": after["snoozed_until"]},
            )
        )
    elif before["status"] != after["status"]:
        entries.append(("status", {"status": before["status"]}, {"status": after["status"]}))
    for field, verb in (("assignee", "assigned"), ("team", "team"), ("is_archived", "archived")):
        old, new = before[field], after[field]
        if _identity(old) != _identity(new):
            entries.append((verb, {field: old}, {field: new}))
    return entries


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


UNCHANGED = object()  # `before` for a change that moves no count (a preview, labels)


def record_conversation_updated(
    conversation: Conversation, *, before=UNCHANGED, also: list[tuple] = ()
) -> None:
    """`conversation.updated` for every viewer, after commit (contact, channel and assignee
    select_related), with how it moved the counts since `before` (the row's CountState before
    the change, read under the same lock; None: it was not there) and, where it may move saved
    views, its state before and after (counts.views_move), then `also` (its activity lines'
    events) in the same INSERT."""
    if before is UNCHANGED:
        counts = views = None
    else:
        after = state_of(conversation)
        counts = counts_delta(before, after)
        views = views_move(before, after, conversation.pk)
    events.record_events(
        [
            (
                events.CONVERSATION_UPDATED,
                conversation.channel_id,
                conversation.pk,
                conversation_payload(conversation),
                counts,
                views,
            ),
            *also,
        ]
    )


def _identity(value):
    return value.get("id") if isinstance(value, dict) else value


def reopen_due_snoozed(*, limit: int = 500) -> int:
    """Beat: snoozed conversations whose time has come are open again, each through
    `update_conversation` (its event and activity), each in its own short transaction. A
    conversation a customer reopened meanwhile (the ingest path) is passed over. Returns how
    many were reopened; the oldest first, at most `limit` per run (the next run takes the rest).
    """
    now = timezone.now()
    due = Conversation.objects.filter(status=Conversation.Status.SNOOZED, snoozed_until__lte=now)
    reopened = 0
    for conversation_id in due.order_by("snoozed_until").values_list("id", flat=True)[:limit]:
        with transaction.atomic():
            conversation = (
                with_label_ids(due.select_for_update(of=("self",)))
                .select_related("contact", "channel", "assignee")
                .defer("channel__secrets")
                .filter(pk=conversation_id)
                .first()
            )
            if conversation is not None:
                update_conversation(conversation, changes={"status": Conversation.Status.OPEN})
                reopened += 1
    return reopened
