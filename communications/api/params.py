"""Query parameters shared by the API and the pages: dates (R16) and keyset cursors."""

import base64
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError


def parse_date_param(params, name: str, *aliases: str, end_of_day: bool = False):
    """`from_date` / `fromDate`: YYYY-MM-DD or ISO 8601; a bad value is a 400 naming it."""
    for key in (name, *aliases):
        raw = params.get(key)
        if raw in (None, ""):
            continue
        value = None
        try:
            day = parse_date(raw) if len(raw) == 10 else None
            if day is not None:
                value = datetime.combine(day, time.min)
                if end_of_day:
                    value += timedelta(days=1) - timedelta(microseconds=1)
            else:
                value = parse_datetime(raw)
        except ValueError:
            value = None
        if value is None:
            raise ValidationError(
                {key: [f"'{raw}' is not a date: use YYYY-MM-DD or ISO 8601 (2026-01-31T12:00:00Z)"]}
            )
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        return value
    return None


def encode_cursor(moment: datetime, pk: int) -> str:
    raw = f"{moment.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(param: str, value: str) -> tuple[datetime, int]:
    try:
        padded = value + "=" * (-len(value) % 4)
        moment_text, pk_text = base64.urlsafe_b64decode(padded).decode().split("|")
        moment = parse_datetime(moment_text)
        if moment is None:
            raise ValueError
        return moment, int(pk_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({param: ["invalid cursor"]}) from exc


def page_size(params, default: int = 25, maximum: int = 100) -> int:
    raw = params.get("page_size")
    if raw in (None, ""):
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise ValidationError({"page_size": [f"must be a whole number from 1 to {maximum}"]})
    return size


TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")


def bool_param(params, name: str) -> bool:
    """`true`/`1` or `false`/`0`; absent or empty is false; anything else is a 400 naming it."""
    raw = params.get(name)
    if raw in (None, ""):
        return False
    if raw.lower() in TRUE_VALUES:
        return True
    if raw.lower() in FALSE_VALUES:
        return False
    raise ValidationError({name: [f"'{raw}' is not a boolean: use true or false"]})


def text_param(params, name: str) -> str:
    """Free text; a NUL character (which PostgreSQL cannot compare) is a 400 naming it."""
    raw = params.get(name) or ""
    if "\x00" in raw:
        raise ValidationError({name: ["must not contain a NUL character"]})
    return raw
