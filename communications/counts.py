"""The numbers beside the inbox's filters, and how one change of a conversation moves them.

The page gets the numbers once (with the shell, and from the 15-second safety-net refetch) and
then moves them with the `counts` delta every conversation event carries: the delta is worked
out once per change, by the service that made it, from the row's state before and after, so
an event costs no count query, per event or per socket. Both halves read the same bucket rule
(`buckets`), so what a delta moves is what the aggregate counts.

Saved views (communications/saved_views) are counted the same way, but a delta cannot name
them: which views a manager has, and what "assigned to me" means, differ per page. So a change
that moves anything a view filters on (status, channel, assignee, team, unread, labels,
archived) carries the conversation's state before and after it (`views_move`: the event's
`views` beside `counts`), and each page works out for each of its views whether the
conversation entered or left it (static/inbox/views.js `matches`, the rules of
selectors.conversation_filter). Cost per event on the server: no query when the writer read
the conversation's label ids with its row (`with_label_ids`, as every writer here does), else
one indexed read of that conversation's label links, and only when the state changed; never
a count, never a query per view or per socket.
"""

from dataclasses import dataclass

from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import Aggregate, Count, JSONField, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from .models import Conversation, ConversationLabel, RealtimeEvent

OPEN_LIKE = (Conversation.Status.OPEN, Conversation.Status.PENDING)


@dataclass(frozen=True)
class CountState:
    """What of a conversation the counts depend on."""

    status: str
    is_archived: bool
    assignee_id: int | None
    unread: bool
    # What saved views filter on besides the above.
    channel_id: int | None = None
    team_id: int | None = None
    label_ids: tuple[int, ...] | None = None  # None: not read with the row


def state_of(conversation: Conversation) -> CountState:
    return CountState(
        status=conversation.status,
        is_archived=conversation.is_archived,
        assignee_id=conversation.assignee_id,
        unread=conversation.unread_count > 0,
        channel_id=conversation.channel_id,
        team_id=conversation.team_id,
        label_ids=known_label_ids(conversation),
    )


LABEL_IDS = "view_label_ids"  # the annotation `with_label_ids` adds


def with_label_ids(queryset):
    """`queryset` with each conversation's label ids read in its own statement (a subquery on
    the label links' conversation index), so a writer knows them without another query."""
    aggregate = (
        JSONBAgg("label_id") if connection.vendor == "postgresql" else JSONGroupArray("label_id")
    )
    ids = (
        ConversationLabel.objects.filter(conversation_id=OuterRef("pk"))
        .order_by()
        .values("conversation_id")
        .annotate(ids=aggregate)
        .values("ids")
    )
    return queryset.annotate(**{LABEL_IDS: Subquery(ids, output_field=JSONField())})


def known_label_ids(conversation: Conversation) -> tuple[int, ...] | None:
    """The conversation's label ids when they were read with it (loaded labels win: a label
    change sets them), else None."""
    loaded = getattr(conversation, "_loaded_labels", None)
    if loaded is not None:
        return tuple(sorted(label.pk for label in loaded))
    if hasattr(conversation, LABEL_IDS):
        return tuple(sorted(getattr(conversation, LABEL_IDS) or ()))
    return None


def view_state(state: CountState | None, label_ids: tuple[int, ...] = ()) -> dict | None:
    """What saved views filter on, as the page reads it; None when in no view (not there, or
    archived, as in the list)."""
    if state is None or state.is_archived:
        return None
    return {
        "status": state.status,
        "channel": state.channel_id,
        "assignee": state.assignee_id,
        "team": state.team_id,
        "unread": state.unread,
        "labels": list(label_ids),
    }


def views_move(
    before: CountState | None, after: CountState | None, conversation_id: int | None = None
) -> dict | None:
    """`{"was": state | None, "now": state | None}` (`view_state`) when the change may move a
    conversation into or out of saved views; None when nothing views filter on changed.

    Labels change only by a label change, which knows both sides: labels unknown on one side
    are the other side's. Known on neither (a writer that did not read them with the row):
    one query of the conversation's links, and only when something else changed."""
    was_labels = before.label_ids if before is not None else None
    now_labels = after.label_ids if after is not None else None
    was_labels = now_labels if was_labels is None else was_labels
    now_labels = was_labels if now_labels is None else now_labels
    was, now = view_state(before), view_state(after)
    if was == now and (was is None or was_labels == now_labels):
        return None
    if was_labels is None:
        if conversation_id is None:  # a conversation created in this change: none yet
            was_labels = now_labels = ()
        else:
            was_labels = now_labels = tuple(
                ConversationLabel.objects.filter(conversation_id=conversation_id)
                .order_by("label_id")
                .values_list("label_id", flat=True)
            )
    return {"was": view_state(before, was_labels), "now": view_state(after, now_labels)}


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


def inbox_counts(queryset, user_id: int, views: dict[int, Q] | None = None) -> dict:
    """The counts over `queryset` (the user's visible conversations) in one query, with
    `as_of`: the newest event id this very statement saw (the same snapshot), so the page
    applies the deltas of later events only and counts none twice. `views`: saved views'
    conditions by id (selectors.conversation_filter), counted in the same statement as
    `views: {"<id>": n}`."""
    views = views or {}
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
        **{f"view_{pk}": Count("id", filter=cond or None) for pk, cond in views.items()},
        # Uncorrelated: evaluated once, in the same snapshot as the counts.
        as_of=Max(Coalesce(Subquery(RealtimeEvent.objects.order_by("-id").values("id")[:1]), 0)),
    )
    if counted["as_of"] is None:
        # No conversation to aggregate over (nothing counted): any event after now counts.
        counted["as_of"] = RealtimeEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
    if views:
        counted["views"] = {str(pk): counted.pop(f"view_{pk}") for pk in views}
    return counted


class JSONGroupArray(Aggregate):
    """SQLite's JSON array aggregate (the embedded database has no JSONB_AGG)."""

    function = "JSON_GROUP_ARRAY"
    output_field = JSONField()
