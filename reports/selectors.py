"""The reports, read from the daily rollups only (never from messages): each is one query.

    params = report_params(request.GET)      # 400 (ValidationError) naming a bad parameter
    data = build_report("first_response", params)

Medians and p90 are exact over the range: the rollups keep each duration, and a percentile is
interpolated between the two nearest values (as PostgreSQL's percentile_cont)."""

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.db.models import Sum
from django.utils.dateparse import parse_date
from rest_framework.exceptions import ValidationError

from .models import DailyManagerRollup, DailyRollup
from .rollups import local_today

MAX_DAYS = 366
DEFAULT_DAYS = 30
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# Histogram bins: (label, from seconds, to seconds or None)
FIRST_RESPONSE_BINS = [
    ("< 1 min", 0, 60),
    ("1–5 min", 60, 300),
    ("5–15 min", 300, 900),
    ("15–30 min", 900, 1800),
    ("30–60 min", 1800, 3600),
    ("1–4 h", 3600, 4 * 3600),
    ("4–24 h", 4 * 3600, 86400),
    ("≥ 1 day", 86400, None),
]
RESOLUTION_BINS = [
    ("< 1 h", 0, 3600),
    ("1–4 h", 3600, 4 * 3600),
    ("4–24 h", 4 * 3600, 86400),
    ("1–3 days", 86400, 3 * 86400),
    ("3–7 days", 3 * 86400, 7 * 86400),
    ("≥ 7 days", 7 * 86400, None),
]


@dataclass(frozen=True)
class ReportParams:
    from_date: date
    to_date: date
    channel: int | None = None
    team: int | None = None

    def as_query(self) -> dict:
        query = {"from_date": self.from_date.isoformat(), "to_date": self.to_date.isoformat()}
        if self.channel is not None:
            query["channel"] = str(self.channel)
        if self.team is not None:
            query["team"] = str(self.team)
        return query


def report_params(params) -> ReportParams:
    """from_date / to_date (YYYY-MM-DD, days in TIME_ZONE, both included; default the last 30
    days), channel and team ids. A bad value, to before from, or more than 366 days: 400."""
    today = local_today()
    to_date = _date(params, "to_date") or today
    from_date = _date(params, "from_date") or to_date - timedelta(days=DEFAULT_DAYS - 1)
    if from_date > to_date:
        raise ValidationError({"to_date": [f"{to_date} is before from_date {from_date}"]})
    days = (to_date - from_date).days + 1
    if days > MAX_DAYS:
        raise ValidationError(
            {"to_date": [f"the range is {days} days long; at most {MAX_DAYS} days per report"]}
        )
    return ReportParams(from_date, to_date, _id(params, "channel"), _id(params, "team"))


def _date(params, name: str) -> date | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: [f"'{raw}' is not a date: use YYYY-MM-DD"]})
    return value


def _id(params, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ValidationError({name: [f"'{raw}' is not a {name} id"]})
    return value


def _rows(model, params: ReportParams):
    queryset = model.objects.filter(day__gte=params.from_date, day__lte=params.to_date)
    if params.channel is not None:
        queryset = queryset.filter(channel_id=params.channel)
    if params.team is not None:
        queryset = queryset.filter(team_id=params.team)
    return queryset


def percentile(values: list, fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (percentile_cont); None when empty."""
    return _percentile_of_sorted(sorted(values), fraction)


def _percentile_of_sorted(ordered: list, fraction: float) -> float | None:
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 1)


def _days(params: ReportParams):
    day = params.from_date
    while day <= params.to_date:
        yield day
        day += timedelta(days=1)


def conversations_report(params: ReportParams) -> dict:
    rows = (
        _rows(DailyRollup, params)
        .values_list("day")
        .annotate(opened=Sum("opened"), resolved=Sum("resolved"))
        .order_by()
    )
    by_day = {day: (opened, resolved) for day, opened, resolved in rows}
    days = [
        {
            "day": day.isoformat(),
            "opened": by_day.get(day, (0, 0))[0],
            "resolved": by_day.get(day, (0, 0))[1],
        }
        for day in _days(params)
    ]
    return {
        "days": days,
        "totals": {
            "opened": sum(d["opened"] for d in days),
            "resolved": sum(d["resolved"] for d in days),
        },
    }


def _duration_report(params: ReportParams, field: str, bins) -> dict:
    values = []
    for chunk in _rows(DailyRollup, params).exclude(**{field: []}).values_list(field, flat=True):
        values.extend(chunk)
    values.sort()
    histogram = []
    for label, low, high in bins:
        upto = len(values) if high is None else bisect_left(values, high)
        count = upto - bisect_left(values, low)
        histogram.append({"label": label, "from_seconds": low, "to_seconds": high, "count": count})
    return {
        "count": len(values),
        "median_seconds": _percentile_of_sorted(values, 0.5),
        "p90_seconds": _percentile_of_sorted(values, 0.9),
        "histogram": histogram,
    }


def first_response_report(params: ReportParams) -> dict:
    return _duration_report(params, "first_response_seconds", FIRST_RESPONSE_BINS)


def resolution_report(params: ReportParams) -> dict:
    return _duration_report(params, "resolution_seconds", RESOLUTION_BINS)


def messages_report(params: ReportParams) -> dict:
    rows = (
        _rows(DailyRollup, params)
        .values_list("channel_id", "channel__name", "channel__kind")
        .annotate(inbound=Sum("messages_in"), outbound=Sum("messages_out"))
        .order_by("channel__name", "channel_id")
    )
    channels = [
        {"channel_id": pk, "channel": name, "kind": kind, "in": inbound, "out": outbound}
        for pk, name, kind, inbound, outbound in rows
    ]
    return {
        "channels": channels,
        "totals": {"in": sum(c["in"] for c in channels), "out": sum(c["out"] for c in channels)},
    }


MANAGERS_SQL = """
WITH picked AS (
    SELECT user_id, assigned, resolved, first_response_seconds
    FROM reports_dailymanagerrollup WHERE {where}
)
SELECT t.user_id, u.username, u.first_name, u.last_name, t.assigned, t.resolved,
       coalesce(s.responses, 0), s.median
FROM (SELECT user_id, sum(assigned) AS assigned, sum(resolved) AS resolved
      FROM picked GROUP BY user_id) t
JOIN auth_user u ON u.id = t.user_id
LEFT JOIN (SELECT user_id, count(*) AS responses,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds::int) AS median
           FROM picked, jsonb_array_elements_text(first_response_seconds) AS seconds
           GROUP BY user_id) s ON s.user_id = t.user_id
"""


def managers_report(params: ReportParams) -> dict:
    """One row per manager. On PostgreSQL summed and the median taken in the database (a
    year is ~20k manager-day rows at 100k conversations); elsewhere in Python."""
    if connection.vendor == "postgresql":
        rows = _managers_in_sql(params)
    else:
        rows = _managers_in_python(params)
    managers = [
        {
            "user_id": user_id,
            "name": f"{first} {last}".strip() or username,
            "assigned": int(assigned),
            "resolved": int(resolved),
            "first_responses": int(responses),
            "median_first_response_seconds": None if median is None else round(float(median), 1),
        }
        for user_id, username, first, last, assigned, resolved, responses, median in rows
    ]
    managers.sort(key=lambda m: (m["name"].lower(), m["user_id"]))
    return {"managers": managers}


def _managers_in_sql(params: ReportParams) -> list[tuple]:
    where, values = ["day >= %s", "day <= %s"], [params.from_date, params.to_date]
    if params.channel is not None:
        where.append("channel_id = %s")
        values.append(params.channel)
    if params.team is not None:
        where.append("team_id = %s")
        values.append(params.team)
    with connection.cursor() as cursor:
        cursor.execute(MANAGERS_SQL.format(where=" AND ".join(where)), values)
        return cursor.fetchall()


def _managers_in_python(params: ReportParams) -> list[tuple]:
    rows = _rows(DailyManagerRollup, params).values_list(
        "user_id",
        "user__username",
        "user__first_name",
        "user__last_name",
        "assigned",
        "resolved",
        "first_response_seconds",
    )
    people: dict = {}
    for user_id, username, first, last, assigned, resolved, seconds in rows:
        person = people.setdefault(user_id, [user_id, username, first, last, 0, 0, []])
        person[4] += assigned
        person[5] += resolved
        person[6].extend(seconds)
    return [(*p[:6], len(p[6]), percentile(p[6], 0.5)) for p in people.values()]


def busiest_hours_report(params: ReportParams) -> dict:
    matrix = [[0] * 24 for _ in WEEKDAYS]
    rows = _rows(DailyRollup, params).exclude(messages_in=0).values_list("day", "inbound_by_hour")
    for day, hours in rows:
        line = matrix[day.weekday()]
        for hour, count in enumerate(hours):
            line[hour] += count
    return {
        "weekdays": WEEKDAYS,
        "hours": list(range(24)),
        "inbound": matrix,
        "max": max(max(line) for line in matrix),
    }


REPORTS = {
    "conversations": ("Conversations opened and resolved per day", conversations_report),
    "first_response": ("First-response time", first_response_report),
    "resolution": ("Resolution time", resolution_report),
    "messages": ("Messages in and out per channel", messages_report),
    "managers": ("Managers", managers_report),
    "busiest_hours": ("Busiest hours (inbound messages)", busiest_hours_report),
}


def build_report(name: str, params: ReportParams) -> dict:
    title, build = REPORTS[name]
    return {"report": name, "title": title, "filters": params.as_query()} | build(params)
