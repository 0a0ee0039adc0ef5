"""Queries built and compiled once per shape: later requests only fill in their values.

Building the inbox list's and the thread's querysets (filter, annotate, values) and compiling
them to SQL took ~30 % of the HTTP processes' Python under the reads benchmark (py-spy,
bench/realpath.py). Those queries have few shapes (which filters are set, the page size, how
many channels the user sees) and many values (ids, dates, cursors).

`rows(shape, build, values)` builds `build(values)` once per shape with stand-in values,
compiles it, and notes where each stand-in landed among the SQL's parameters. Later calls of
that shape run the same SQL with their own values in those places, and turn the rows into
dicts as `.values()` does (the same column names and the same field converters).

What decides the SQL's text belongs in `shape`; only ints and aware datetimes may be values.
A value of another kind (a bool, None, a naive datetime, an int outside int4, where Django
writes different SQL) makes that call build its queryset as before. So does a shape whose
stand-ins do not all come out verbatim as parameters (SQLite adapts datetimes to text), or
one whose query is empty (an empty `__in`): it is never templated.
"""

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models.query import ValuesIterable

# Stand-ins: far from real ids and dates, and inside int4, where Django's integer lookups
# write the SQL a real id gets (outside it, an `=` becomes an always-false condition).
_FIRST_STAND_IN_ID = 2_000_000_000
_FIRST_STAND_IN_MOMENT = datetime(2190, 1, 1, tzinfo=UTC)
_INT4 = 2**31 - 1
# More shapes than this (a bound, not a tuning knob: the list has a few hundred) start over.
MAX_TEMPLATES = 1024


@dataclass(frozen=True)
class _Template:
    sql: str
    params: tuple
    slots: tuple  # (parameter index, value name, list index or None)
    names: tuple  # the row dicts' keys, in column order
    converters: tuple  # (column index, converters, expression): the fields' from_db_value


_UNTEMPLATED = object()  # a shape that builds its queryset on every call
_templates: dict = {}
_lock = threading.Lock()


def rows(shape: tuple, build: Callable[[dict], Any], values: dict, using: str = "default"):
    """The rows (dicts) of `build(values)`, a sliced `.values()` queryset whose SQL text
    depends on `shape` alone."""
    key = _key(shape, values, using)
    if key is None:
        return list(build(values))
    template = _templates.get(key)
    if template is None:
        template = _compile(build, values, using)
        with _lock:
            if len(_templates) >= MAX_TEMPLATES:
                _templates.clear()
            _templates[key] = template
    if template is _UNTEMPLATED:
        return list(build(values))
    return _run(template, values, using)


def _key(shape: tuple, values: dict, using: str) -> tuple | None:
    kinds = []
    for name, value in values.items():
        if _is_id(value):
            kinds.append((name, "id"))
        elif _is_moment(value):
            kinds.append((name, "moment"))
        elif isinstance(value, list | tuple) and all(_is_id(item) for item in value):
            kinds.append((name, "ids", len(value)))
        else:
            return None
    return (using, shape, tuple(kinds))


def _is_id(value) -> bool:
    return type(value) is int and -_INT4 <= value <= _INT4


def _is_moment(value) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None


def _compile(build, values: dict, using: str):
    stand_ins, owners = {}, {}
    ids = itertools.count(_FIRST_STAND_IN_ID)  # one number per id: no two stand-ins alike
    for number, (name, value) in enumerate(values.items()):
        if isinstance(value, list | tuple):
            items = [next(ids) for _ in value]
            stand_ins[name] = items
            owners |= {item: (name, index) for index, item in enumerate(items)}
        elif _is_id(value):
            stand_ins[name] = next(ids)
            owners[stand_ins[name]] = (name, None)
        else:
            stand_ins[name] = _FIRST_STAND_IN_MOMENT + timedelta(days=number)
            owners[stand_ins[name]] = (name, None)
    queryset = build(stand_ins)
    if queryset._iterable_class is not ValuesIterable:
        raise TypeError("query_templates.rows needs a .values() queryset")
    query = queryset.query
    compiler = query.get_compiler(using=using)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return _UNTEMPLATED
    slots, seen = [], set()
    for index, param in enumerate(params):
        try:
            owner = owners.get(param) if type(param) in (int, datetime) else None
        except TypeError:  # an unhashable parameter is never a stand-in
            owner = None
        if owner is not None:
            slots.append((index, *owner))
            seen.add(owner)
    if seen != set(owners.values()):
        return _UNTEMPLATED  # a stand-in was adapted on its way (or dropped): no template
    names = query.selected or [
        *query.extra_select,
        *query.values_select,
        *query.annotation_select,
    ]
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    converters = tuple(
        (index, tuple(found), expression)
        for index, (found, expression) in compiler.get_converters(fields).items()
    )
    return _Template(sql, tuple(params), tuple(slots), tuple(names), converters)


def _run(template: _Template, values: dict, using: str) -> list[dict]:
    params = list(template.params)
    for index, name, item in template.slots:
        params[index] = values[name] if item is None else values[name][item]
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(template.sql, params)
        fetched = cursor.fetchall()
    names = template.names
    if not template.converters:
        return [dict(zip(names, row, strict=True)) for row in fetched]
    found = []
    for row in fetched:
        row = list(row)
        for index, converters, expression in template.converters:
            value = row[index]
            for converter in converters:
                value = converter(value, expression, connection)
            row[index] = value
        found.append(dict(zip(names, row, strict=True)))
    return found
