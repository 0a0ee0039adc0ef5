"""Auto-assignment and manager availability.

A channel's `auto_assignment` says who gets a conversation the ingest path has just created:
nobody ("off"), the assignment team's available managers in turn ("round_robin") or the least
loaded of them ("balanced"). A manager is a candidate while their availability is "online" and
they hold fewer open (or pending) conversations than their cap (their own, else the team's).

Race-free by locks taken inside the ingest transaction, always in the same order after the
conversation rows: the team row (it holds the round robin's position), then the candidates'
availability rows in user id order. The open conversations are counted only once those locks
are held, in a statement of its own (under READ COMMITTED a new statement sees every
assignment committed by whoever held the locks before): two batches assigning at once, even
for two teams sharing a manager, take turns, so no manager goes over their cap. A conversation
is assigned only by the transaction that inserted it, so never twice.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from crm.models import Team

from ..counts import state_of, with_label_ids
from ..models import Channel, Conversation, ManagerAvailability
from .activity import conversation_line, record_lines, user_ref
from .conversations import record_conversation_updated

logger = logging.getLogger(__name__)

# What counts towards a manager's cap.
OPEN_STATUSES = (Conversation.Status.OPEN, Conversation.Status.PENDING)


class AvailabilityRejected(Exception):
    """A status that does not exist; the text says which ones do."""


def auto_assign_new_conversations(
    channel: Channel, conversations: list[Conversation], *, activity_events: list | None = None
) -> bool:
    """Give each new conversation of `channel` a manager (and the assignment team), if the
    channel auto-assigns. Runs in the caller's transaction with the conversations locked (the
    ingest path's new rows); the caller saves their `assignee` and `team`. Each choice is one
    activity line of the conversation by the system ("assigned" with the rule, or "team" when
    every manager was away or at their cap), all in one INSERT; their `activity.created` events
    are appended to `activity_events` for the caller to record with its own. Returns whether
    any conversation was changed. Costs nothing with auto-assignment off; five statements
    otherwise."""
    if channel.auto_assignment == Channel.AutoAssignment.OFF or not conversations:
        return False
    team = _locked_assignment_team(channel)
    if team is None:
        return False
    candidates = _locked_candidates(team)
    load = _open_counts([c.user_id for c in candidates]) if candidates else {}
    chosen_last = None
    lines = []
    now = timezone.now()
    team_ref = {"id": team.pk, "name": team.name}
    for conversation in sorted(conversations, key=lambda c: c.pk):
        conversation.team = team
        pick = _choose(channel.auto_assignment, candidates, load, team, chosen_last)
        if pick is not None:
            conversation.assignee = pick.user
            load[pick.user_id] = load.get(pick.user_id, 0) + 1
            chosen_last = pick.user_id
            verb, after = "assigned", {"assignee": user_ref(pick.user), "team": team_ref}
        else:  # nobody online under their cap: the conversation waits in the team's queue
            verb, after = "team", {"team": team_ref}
        after["rule"] = channel.auto_assignment
        before = {key: None for key in after if key != "rule"}
        lines.append(conversation_line(conversation, verb, before, after, now=now))
    if chosen_last is not None and chosen_last != team.last_auto_assignee_id:
        Team.objects.filter(pk=team.pk).update(last_auto_assignee_id=chosen_last)
    events = record_lines(lines, channel_id=channel.pk)
    if activity_events is not None:
        activity_events.extend(events)
    return True


def _locked_assignment_team(channel: Channel) -> Team | None:
    teams = Team.objects.select_for_update(of=("self",))
    if channel.assignment_team_id:
        return teams.filter(pk=channel.assignment_team_id).first()
    return teams.filter(channels=channel).order_by("id").first()


def _locked_candidates(team: Team) -> list[ManagerAvailability]:
    """The team's online managers, their availability rows locked in user id order."""
    return list(
        ManagerAvailability.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            user__teams=team,
            user__is_active=True,
            status=ManagerAvailability.Status.ONLINE,
        )
        .order_by("user_id")
    )


def _open_counts(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Conversation.objects.filter(assignee_id__in=user_ids, status__in=OPEN_STATUSES)
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def _cap(candidate: ManagerAvailability, team: Team) -> int | None:
    if candidate.max_open_conversations is not None:
        return candidate.max_open_conversations
    return team.max_open_per_manager


def _choose(
    mode: str,
    candidates: list[ManagerAvailability],
    load: dict[int, int],
    team: Team,
    chosen_last: int | None,
) -> ManagerAvailability | None:
    room = [c for c in candidates if (cap := _cap(c, team)) is None or load.get(c.user_id, 0) < cap]
    if not room:
        return None
    last = chosen_last if chosen_last is not None else team.last_auto_assignee_id
    # Round robin order: the first after the last one served, wrapping around.
    in_turn = sorted(room, key=lambda c: (last is not None and c.user_id <= last, c.user_id))
    if mode == Channel.AutoAssignment.BALANCED:
        fewest = min(load.get(c.user_id, 0) for c in room)
        return next(c for c in in_turn if load.get(c.user_id, 0) == fewest)
    return in_turn[0]


# --- Availability ---------------------------------------------------------------------------


def availability_for(user) -> ManagerAvailability:
    """The user's availability row (offline until they say or a socket opens)."""
    availability, _ = ManagerAvailability.objects.get_or_create(user=user)
    return availability


def set_availability(user, *, status: str) -> ManagerAvailability:
    """The manager chose a status. Going offline re-queues their open conversations when
    AVAILABILITY_REQUEUE_ON_OFFLINE is on (after this commits, in its own transaction)."""
    if status not in ManagerAvailability.Status.values:
        allowed = ", ".join(ManagerAvailability.Status.values)
        raise AvailabilityRejected(f"status must be one of {allowed}, not {status!r}")
    with transaction.atomic():
        availability, _ = ManagerAvailability.objects.select_for_update().get_or_create(user=user)
        was = availability.status
        availability.status = status
        availability.set_automatically = False
        availability.save(update_fields=["status", "set_automatically", "updated_at"])
        if status == ManagerAvailability.Status.OFFLINE and was != status:
            requeue_after_commit([user.pk])
    return availability


def socket_seen(user_id: int, *, opened: bool = False) -> None:
    """An inbox socket of the user is open (or has just closed): remember when. A socket that
    opens brings back a manager whom beat, not they themselves, had set offline."""
    now = timezone.now()
    availability, created = ManagerAvailability.objects.get_or_create(
        user_id=user_id,
        defaults={"status": ManagerAvailability.Status.ONLINE, "last_socket_at": now},
    )
    if created:
        return
    updates: dict = {"last_socket_at": now, "updated_at": now}
    if opened and availability.status == ManagerAvailability.Status.OFFLINE:
        ManagerAvailability.objects.filter(user_id=user_id, set_automatically=True).update(
            status=ManagerAvailability.Status.ONLINE, set_automatically=False, **updates
        )
    ManagerAvailability.objects.filter(user_id=user_id).update(**updates)


def mark_absent_managers_offline() -> list[int]:
    """Beat: managers whose last inbox socket has been gone for
    AVAILABILITY_OFFLINE_AFTER_SECONDS go offline (automatically). Returns their ids."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.SWITCHBOARD["AVAILABILITY_OFFLINE_AFTER_SECONDS"]
    )
    with transaction.atomic():
        absent = list(
            ManagerAvailability.objects.select_for_update(skip_locked=True)
            .filter(~Q(status=ManagerAvailability.Status.OFFLINE), last_socket_at__lt=cutoff)
            .values_list("user_id", flat=True)
        )
        if not absent:
            return []
        ManagerAvailability.objects.filter(user_id__in=absent).update(
            status=ManagerAvailability.Status.OFFLINE,
            set_automatically=True,
            updated_at=timezone.now(),
        )
        requeue_after_commit(absent)
    return absent


def requeue_after_commit(user_ids: list[int]) -> None:
    """Managers went offline: once that commits, hand their open conversations back
    (AVAILABILITY_REQUEUE_ON_OFFLINE)."""
    if not settings.SWITCHBOARD["AVAILABILITY_REQUEUE_ON_OFFLINE"]:
        return
    from ..tasks import requeue_conversations_of

    transaction.on_commit(lambda: requeue_conversations_of.delay(list(user_ids)))


def requeue_open_conversations(user_ids: list[int]) -> int:
    """The open conversations of managers who went offline go back to their channel's
    auto-assignment (or unassigned, where the channel does not auto-assign). One transaction
    per channel, locks in the ingest path's order: conversations, team, managers."""
    channel_ids = sorted(
        set(
            Conversation.objects.filter(
                assignee_id__in=user_ids, status__in=OPEN_STATUSES
            ).values_list("channel_id", flat=True)
        )
    )
    moved = 0
    for channel_id in channel_ids:
        with transaction.atomic():
            channel = Channel.objects.defer("secrets").get(pk=channel_id)
            conversations = list(
                with_label_ids(Conversation.objects.select_for_update(of=("self",)))
                .select_related("contact")
                .filter(channel_id=channel_id, assignee_id__in=user_ids, status__in=OPEN_STATUSES)
                .order_by("id")
            )
            before = {}
            for conversation in conversations:
                before[conversation.pk] = state_of(conversation)  # the counts' delta (Mine…)
                conversation.channel = channel
                conversation.assignee = None
            auto_assign_new_conversations(channel, conversations)
            for conversation in conversations:
                conversation.version += 1
                conversation.save(update_fields=["assignee", "team", "version", "updated_at"])
                record_conversation_updated(conversation, before=before[conversation.pk])
            moved += len(conversations)
    return moved
