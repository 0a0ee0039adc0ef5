"""Building the daily rollups (reports/models.py) from conversations, messages and the
activity log. Beat refreshes yesterday and today every few minutes (`refresh_recent`);
`manage.py rebuild_rollups --from … --to …` rebuilds any range. Rebuilding a day replaces its
rows in one transaction, so running it twice gives the same rows.

Day buckets are calendar days in settings.TIME_ZONE (UTC unless configured otherwise).

Definitions (what each number counts):

- **opened** on day D: conversations whose `created_at` falls on D.
- **resolved** on day D: status changes to "resolved" recorded in the activity log on D (a
  conversation resolved, reopened and resolved again counts twice).
- **first response**: for a conversation, let *first inbound* be the `created_at` of its
  earliest inbound message. Its first response is the earliest outbound message at or after
  the first inbound that a person sent (`sender_user` set: automated replies such as away
  messages have none), that is not a private note or a system line and did not fail. The
  first-response time is the seconds between the two; it is counted on the day of the
  response and credited to the person who sent it. A conversation without an inbound message
  or without such a reply has no first response.
- **resolution time**: seconds from the conversation's `created_at` to its *first* status
  change to resolved, counted on the day of that change (later re-resolutions count as
  resolved but not again as a resolution time).
- **messages in / out**: inbound messages, and outbound messages that did not fail; private
  notes and system lines are neither. Counted on the day of their `created_at`, under the
  channel and the conversation's current team.
- **inbound by hour**: inbound messages per local hour of the day (the busiest-hours heatmap
  adds the days up by weekday).
- per manager, **assigned** on D: conversations opened on D that are assigned to the manager
  when the day is rolled up; **resolved**: the resolutions they made on D.

Team and assignee are the conversation's values at rollup time: rebuild a range to move old
numbers after a conversation changes team."""

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone

from communications.models import Activity, Conversation, Message

from .models import DailyManagerRollup, DailyRollup

NOT_MESSAGES = (Message.Kind.NOTE, Message.Kind.SYSTEM)
CHUNK_DAYS = 31


def local_zone():
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_today() -> date:
    return timezone.now().astimezone(local_zone()).date()


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in TIME_ZONE, as aware datetimes."""
    zone = local_zone()
    return (
        datetime.combine(first, time.min, tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
    )


def refresh_recent() -> dict:
    """Beat's refresh: yesterday (late arrivals around midnight) and today so far."""
    today = local_today()
    return rebuild_rollups(today - timedelta(days=1), today)


def rebuild_rollups(first: date, last: date, *, log=None) -> dict:
    """Rebuild the rollups of the days `first`..`last` (inclusive), a month per transaction."""
    if last < first:
        raise ValueError("the last day is before the first")
    totals = {"days": 0, "rows": 0, "manager_rows": 0}
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=CHUNK_DAYS - 1))
        rows, manager_rows = _rebuild_chunk(start, end)
        totals["days"] += (end - start).days + 1
        totals["rows"] += rows
        totals["manager_rows"] += manager_rows
        if log:
            log(f"{start}..{end}: {rows} rows, {manager_rows} manager rows")
        start = end + timedelta(days=1)
    return totals


def _rebuild_chunk(first: date, last: date) -> tuple[int, int]:
    lo, hi = day_bounds(first, last)
    zone = local_zone()
    rows: dict = defaultdict(_empty_row)
    managers: dict = defaultdict(_empty_manager_row)

    def local_day(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    opened = (
        Conversation.objects.filter(created_at__gte=lo, created_at__lt=hi)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("day", "channel_id", "team_id", "assignee_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for day, channel_id, team_id, assignee_id, n in opened:
        rows[day, channel_id, team_id]["opened"] += n
        if assignee_id is not None:
            managers[day, channel_id, team_id, assignee_id]["assigned"] += n

    messages = (
        Message.objects.filter(created_at__gte=lo, created_at__lt=hi)
        .exclude(kind__in=NOT_MESSAGES)
        .exclude(direction=Message.Direction.OUTBOUND, status=Message.Status.FAILED)
        .annotate(
            day=TruncDate("created_at", tzinfo=zone),
            hour=ExtractHour("created_at", tzinfo=zone),
        )
        .values_list("day", "hour", "channel_id", "conversation__team_id", "direction")
        .annotate(n=Count("id"))
        .order_by()
    )
    for day, hour, channel_id, team_id, direction, n in messages:
        row = rows[day, channel_id, team_id]
        if direction == Message.Direction.INBOUND:
            row["messages_in"] += n
            row["inbound_by_hour"][hour] += n
        else:
            row["messages_out"] += n

    for conversation in first_responses(lo, hi):
        day = local_day(conversation["first_out"])
        seconds = _seconds(conversation["first_out"] - conversation["first_in"])
        key = (day, conversation["channel_id"], conversation["team_id"])
        rows[key]["first_response_seconds"].append(seconds)
        managers[(*key, conversation["responder"])]["first_response_seconds"].append(seconds)

    earlier = Activity.objects.filter(
        conversation_id=OuterRef("conversation_id"),
        verb=Activity.Verb.STATUS,
        after__status=Conversation.Status.RESOLVED,
    ).filter(
        Q(created_at__lt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
    )
    resolves = (
        Activity.objects.filter(
            verb=Activity.Verb.STATUS,
            after__status=Conversation.Status.RESOLVED,
            conversation__isnull=False,
            created_at__gte=lo,
            created_at__lt=hi,
        )
        .annotate(again=Exists(earlier))
        .values_list(
            "created_at",
            "conversation__channel_id",
            "conversation__team_id",
            "conversation__created_at",
            "actor_id",
            "again",
        )
    )
    for at, channel_id, team_id, opened_at, actor_id, again in resolves:
        key = (local_day(at), channel_id, team_id)
        rows[key]["resolved"] += 1
        if not again:
            rows[key]["resolution_seconds"].append(_seconds(at - opened_at))
        if actor_id is not None:
            managers[(*key, actor_id)]["resolved"] += 1

    daily = [
        DailyRollup(day=day, channel_id=channel_id, team_id=team_id, **values)
        for (day, channel_id, team_id), values in rows.items()
    ]
    per_manager = [
        DailyManagerRollup(day=day, channel_id=channel_id, team_id=team_id, user_id=user_id, **v)
        for (day, channel_id, team_id, user_id), v in managers.items()
    ]
    with transaction.atomic():
        DailyRollup.objects.filter(day__gte=first, day__lte=last).delete()
        DailyManagerRollup.objects.filter(day__gte=first, day__lte=last).delete()
        DailyRollup.objects.bulk_create(daily, batch_size=1000)
        DailyManagerRollup.objects.bulk_create(per_manager, batch_size=1000)
    return len(daily), len(per_manager)


def first_responses(lo: datetime, hi: datetime):
    """Conversations whose first response (see the module's docstring) was given in [lo, hi):
    dicts of channel_id, team_id, first_in, first_out, responder."""
    inbound = Message.objects.filter(
        conversation_id=OuterRef("pk"), direction=Message.Direction.INBOUND
    ).order_by("created_at", "id")
    replies = (
        Message.objects.filter(
            conversation_id=OuterRef("pk"),
            direction=Message.Direction.OUTBOUND,
            sender_user__isnull=False,
            created_at__gte=OuterRef("first_in"),
        )
        .exclude(kind__in=NOT_MESSAGES)
        .exclude(status=Message.Status.FAILED)
        .order_by("created_at", "id")
    )
    return (
        Conversation.objects.filter(last_message_at__gte=lo, created_at__lt=hi)
        .annotate(first_in=Subquery(inbound.values("created_at")[:1]))
        .filter(first_in__isnull=False, first_in__lt=hi)
        .annotate(
            first_out=Subquery(replies.values("created_at")[:1]),
            responder=Subquery(replies.values("sender_user_id")[:1]),
        )
        .filter(first_out__gte=lo, first_out__lt=hi)
        .values("channel_id", "team_id", "first_in", "first_out", "responder")
        .order_by()
    )


def _seconds(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds()))


def _empty_row() -> dict:
    return {
        "opened": 0,
        "resolved": 0,
        "messages_in": 0,
        "messages_out": 0,
        "first_response_seconds": [],
        "resolution_seconds": [],
        "inbound_by_hour": [0] * 24,
    }


def _empty_manager_row() -> dict:
    return {"assigned": 0, "resolved": 0, "first_response_seconds": []}
