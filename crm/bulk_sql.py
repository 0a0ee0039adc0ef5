"""Many rows in one statement, for the hot write paths (ingest, realtime events).

On PostgreSQL the rows travel as one JSON document, unpacked in SQL (`jsonb_to_record`).
Django's own bulk_create sends one array per column instead, and psycopg quotes every
element of those arrays in Python: a batch of a hundred realtime events (long JSON payloads)
spent ~30 ms there. Elsewhere (SQLite in the embedded setup) Django's bulk methods are used.
"""

import json
from datetime import date, datetime, time
from decimal import Decimal

from django.db import connection
from django.db.models import Model


def insert_rows(objects: list[Model]) -> None:
    """INSERT every object (all of one model) in one statement and set their primary keys.

    Like bulk_create: auto_now/auto_now_add are applied, no signals are sent.
    """
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    rows = [{f.column: _json_value(f.pre_save(obj, add=True)) for f in fields} for obj in objects]
    columns = ", ".join(_quote(f.column) for f in fields)
    sql = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {_recordset(fields, 'r')} ORDER BY e._row "
        f"RETURNING {_quote(model._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])
        primary_keys = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objects, primary_keys, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update_rows(objects: list[Model], field_names: list[str]) -> None:
    """UPDATE the named fields of every object (all of one model) in one statement."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        for obj in objects:
            obj.save(update_fields=field_names)
        return
    meta = model._meta
    fields = [meta.pk] + [meta.get_field(name) for name in field_names]
    rows = [{f.column: _json_value(f.pre_save(obj, add=False)) for f in fields} for obj in objects]
    assignments = ", ".join(f"{_quote(f.column)} = v.{_quote(f.column)}" for f in fields[1:])
    pk = _quote(meta.pk.column)
    sql = (
        f"UPDATE {_quote(meta.db_table)} AS t SET {assignments} "
        f"FROM {_recordset(fields, 'v')} WHERE t.{pk} = v.{pk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])


def _recordset(fields, alias: str) -> str:
    """The JSON array parameter as rows named `alias`, numbered by `e._row` in array order."""
    definitions = ", ".join(f"{_quote(f.column)} {_column_type(f)}" for f in fields)
    return (
        "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(doc, _row), "
        f"LATERAL jsonb_to_record(e.doc) AS {alias}({definitions})"
    )


def _column_type(field) -> str:
    """The column's type without length limits (the table enforces those)."""
    target = field.target_field if field.is_relation else field
    if target.primary_key and target.get_internal_type() in ("AutoField", "BigAutoField"):
        return "bigint"
    return field.db_type(connection).split("(")[0]


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _json_value(value):
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
