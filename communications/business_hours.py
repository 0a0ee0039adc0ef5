"""A channel's business hours: a weekly schedule in a time zone, minus holidays.

Stored on the channel (`Channel.business_hours`, edited in the admin's channel form) as

    {"time_zone": "Europe/Berlin",
     "week": {"mon": [["09:00", "17:00"]], "sat": [["10:00", "13:00"], ["14:00", "16:00"]]},
     "holidays": ["2026-12-25"],
     "away_reply": "We're closed now and will answer from 9:00."}

so the ingest path knows without a query whether an automatic reply may be due. No schedule
means always open. "24:00" ends a day; an interval may not cross midnight (split it in two).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursInvalid(ValueError):
    """The text says what is wrong, naming the day or date."""


def parse_intervals(text: str, *, day: str = "") -> list[list[str]]:
    """ "09:00-12:30, 13:30-18:00" → [["09:00", "12:30"], ["13:30", "18:00"]]; "" → []."""
    intervals = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        start, sep, end = part.partition("-")
        if not sep:
            raise BusinessHoursInvalid(f"{day}: {part!r} is not a range like 09:00-17:00")
        start, end = _clock(start.strip(), day), _clock(end.strip(), day)
        if _minutes(end) <= _minutes(start):
            raise BusinessHoursInvalid(f"{day}: {part!r} ends before it starts")
        intervals.append([start, end])
    intervals.sort(key=lambda i: _minutes(i[0]))
    for before, after in zip(intervals, intervals[1:], strict=False):
        if _minutes(after[0]) < _minutes(before[1]):
            raise BusinessHoursInvalid(f"{day}: {before[0]}-{before[1]} overlaps {after[0]}")
    return intervals


def format_intervals(intervals: list[list[str]]) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


def parse_holidays(text: str) -> list[str]:
    days = []
    for line in filter(None, (line.strip() for line in text.replace(",", "\n").splitlines())):
        try:
            days.append(date.fromisoformat(line).isoformat())
        except ValueError:
            raise BusinessHoursInvalid(f"holiday {line!r} is not a date like 2026-12-25") from None
    return sorted(set(days))


def check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BusinessHoursInvalid(f"{name!r} is not a time zone (e.g. Europe/Berlin)") from None
    return name


def _clock(value: str, day: str) -> str:
    hours, sep, minutes = value.partition(":")
    if (
        sep
        and hours.isdigit()
        and len(minutes) == 2
        and minutes.isdigit()
        and (int(hours), int(minutes)) <= (24, 0)
        and int(minutes) < 60
    ):
        return f"{int(hours):02d}:{minutes}"
    raise BusinessHoursInvalid(f"{day}: {value!r} is not a time like 09:00")


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class BusinessHours:
    time_zone: ZoneInfo
    week: dict[str, list[list[str]]]
    holidays: frozenset[str]
    away_reply: str

    @classmethod
    def of(cls, config: dict | None) -> "BusinessHours | None":
        """The channel's hours, or None when it has none (always open)."""
        config = config or {}
        week = {day: config.get("week", {}).get(day) or [] for day in DAYS}
        if not any(week.values()):
            return None
        return cls(
            time_zone=ZoneInfo(config.get("time_zone") or "UTC"),
            week=week,
            holidays=frozenset(config.get("holidays") or ()),
            away_reply=(config.get("away_reply") or "").strip(),
        )

    def _opening_times(self, day: date) -> list[tuple[datetime, datetime]]:
        if day.isoformat() in self.holidays:
            return []
        times = []
        for start, end in self.week[DAYS[day.weekday()]]:
            opens = datetime.combine(day, time(0), self.time_zone) + timedelta(
                minutes=_minutes(start)
            )
            closes = datetime.combine(day, time(0), self.time_zone) + timedelta(
                minutes=_minutes(end)
            )
            times.append((opens, closes))
        return times

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.time_zone)
        return any(opens <= moment < closes for opens, closes in self._opening_times(local.date()))

    def next_opening(self, moment: datetime) -> datetime | None:
        """When the business next opens after `moment` (None: never, within a year)."""
        local = moment.astimezone(self.time_zone).date()
        for offset in range(0, 371):
            for opens, _closes in self._opening_times(local + timedelta(days=offset)):
                if opens > moment:
                    return opens
        return None

    def closed_period_key(self, moment: datetime) -> str:
        """One key per closed period: the moment it ends (the next opening), in UTC."""
        opening = self.next_opening(moment)
        if opening is None:
            return "closed"
        return opening.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%MZ")
