"""The numbers beside the inbox's filters, and how one change of a conversation moves them.

The page gets the numbers once (with the shell, and from the 15-second safety-net refetch) and
then moves them with the `counts` delta every conversation event carries: the delta is worked
out once per change, by the service that made it, from the row's state before and after, so
an event costs no count query, per event or per socket. Both halves read the same bucket rule
(`buckets`), so what a delta moves is what the aggregate counts.
"""

from dataclasses import dataclass

from django.db.models import Count, Max, Q, Subquery
from django.db.models.functions import Coalesce

from .models import Conversation, RealtimeEvent

OPEN_LIKE = (Conversation.Status.OPEN, Conversation.Status.PENDING)


@dataclass(frozen=True)
class CountState:
    """What of a conversation the counts depend on."""

    status: str
    is_archived: bool
    assignee_id: int | None
    unread: bool


def state_of(conversation: Conversation) -> CountState:
    return CountState(
        status=conversation.status,
        is_archived=conversation.is_archived,
        assignee_id=conversation.assignee_id,
        unread=conversation.unread_count > 0,
    )


def buckets(state: CountState | None) -> set[str]:
    """The counts a conversation in `state` is part of ("mine:<user id>" for its assignee's
    Mine). Archived conversations are in none, as in the list."""
    if state is None or state.is_archived:
        return set()
    found = {"all", state.status}
    if state.unread:
        found.add("unread")
    if state.status in OPEN_LIKE:
        found.add(f"mine:{state.assignee_id}" if state.assignee_id else "unassigned")
    return found


def counts_delta(before: CountState | None, after: CountState | None) -> dict | None:
    """How a change from `before` to `after` (None: not there) moves the counts, e.g.
    `{"open": -1, "resolved": 1, "mine": {"7": -1}}`; None when it moves none."""
    was, now = buckets(before), buckets(after)
    delta: dict = {}
    for name, step in [*((b, -1) for b in was - now), *((b, 1) for b in now - was)]:
        if name.startswith("mine:"):
            delta.setdefault("mine", {})[name[5:]] = step
        else:
            delta[name] = step
    return delta or None


def inbox_counts(queryset, user_id: int) -> dict:
    """The counts over `queryset` (the user's visible conversations) in one query, with
    `as_of`: the newest event id this very statement saw (the same snapshot), so the page
    applies the deltas of later events only and counts none twice."""
    open_like = Q(status__in=OPEN_LIKE)
    counted = queryset.filter(is_archived=False).aggregate(
        all=Count("id"),
        open=Count("id", filter=Q(status=Conversation.Status.OPEN)),
        pending=Count("id", filter=Q(status=Conversation.Status.PENDING)),
        snoozed=Count("id", filter=Q(status=Conversation.Status.SNOOZED)),
        resolved=Count("id", filter=Q(status=Conversation.Status.RESOLVED)),
        mine=Count("id", filter=open_like & Q(assignee_id=user_id)),
        unassigned=Count("id", filter=open_like & Q(assignee__isnull=True)),
        unread=Count("id", filter=Q(unread_count__gt=0)),
        # Uncorrelated: evaluated once, in the same snapshot as the counts.
        as_of=Max(Coalesce(Subquery(RealtimeEvent.objects.order_by("-id").values("id")[:1]), 0)),
    )
    if counted["as_of"] is None:
        # No conversation to aggregate over (nothing counted): any event after now counts.
        counted["as_of"] = RealtimeEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
    return counted
