"""Many rows in one statement, for the hot write paths (ingest, realtime events).

On PostgreSQL the rows travel as one JSON document, unpacked in SQL (`jsonb_to_record`).
Django's own bulk_create sends one array per column instead, and psycopg quotes every
element of those arrays in Python: a batch of a hundred realtime events (long JSON payloads)
spent ~30 ms there. Elsewhere (SQLite in the embedded setup) Django's bulk methods are used.
"""

import functools
import json
from datetime import date, datetime, time
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.db.models.fields.files import FieldFile


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
    sql, fields = _insert_sql(model)
    for obj, (pk,) in zip(objects, _execute(sql, fields, objects, add=True), strict=True):
        _mark_saved(obj, pk)


def insert_new_rows(objects: list[Model], key: tuple[str, ...]) -> list[Model]:
    """INSERT the objects a unique constraint does not already hold, in one statement; return
    those inserted, primary keys set. The others are skipped (ON CONFLICT DO NOTHING): a
    concurrent transaction that inserted the same key first wins, and this statement waits for
    it to commit or roll back. `key` names the fields that identify an object within the batch
    (its unique constraint), so the inserted rows can be matched to their objects.
    """
    if not objects:
        return []
    model = type(objects[0])
    if connection.vendor != "postgresql":
        inserted = []
        for obj in objects:
            try:
                with transaction.atomic():
                    obj.save(force_insert=True)
            except IntegrityError:
                continue
            inserted.append(obj)
        return inserted
    key_fields = [model._meta.get_field(name) for name in key]
    by_key = {tuple(getattr(obj, f.attname) for f in key_fields): obj for obj in objects}
    sql, fields = _insert_sql(model, skip_conflicts_returning=tuple(f.column for f in key_fields))
    inserted = []
    for pk, *values in _execute(sql, fields, objects, add=True):
        obj = by_key[tuple(values)]
        _mark_saved(obj, pk)
        inserted.append(obj)
    return inserted


def delete_rows(model: type[Model], primary_keys: list) -> None:
    """DELETE rows by primary key in one statement: no cascade collection, no signals. Only for
    rows nothing can reference yet (created in the current transaction)."""
    if primary_keys:
        model._base_manager.filter(pk__in=primary_keys)._raw_delete(connection.alias)


def update_rows(objects: list[Model], field_names: list[str]) -> None:
    """UPDATE the named fields of every object (all of one model) in one statement.

    A model with a `version` column (payloads that pages compare) gets it bumped in the same
    UPDATE, from the row's current value, and the objects get the new value.
    """
    if not objects:
        return
    model = type(objects[0])
    versioned = _versioned(model) and VERSION not in field_names
    if connection.vendor != "postgresql":
        for obj in objects:
            if versioned:
                obj.version = model._base_manager.get(pk=obj.pk).version + 1
            obj.save(update_fields=[*field_names, VERSION] if versioned else field_names)
        return
    sql, fields = _update_sql(model, tuple(field_names), versioned)
    rows = _execute(sql, fields, objects, add=False)
    if versioned:
        by_pk = {obj.pk: obj for obj in objects}
        for pk, version in rows:
            by_pk[pk].version = version


VERSION = "version"


def _versioned(model: type[Model]) -> bool:
    return any(f.name == VERSION for f in model._meta.concrete_fields)


@functools.cache
def _insert_sql(
    model: type[Model], skip_conflicts_returning: tuple[str, ...] | None = None
) -> tuple[str, list]:
    """The statement for a model (built once per process: the hot paths run it constantly).
    It returns each row's primary key; with `skip_conflicts_returning`, it skips rows a unique
    constraint holds and returns those columns after the key."""
    # Generated columns (Contact.phone_digits) are the database's to fill.
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    columns = ", ".join(_quote(f.column) for f in fields)
    returning = [model._meta.pk.column, *(skip_conflicts_returning or ())]
    on_conflict = "ON CONFLICT DO NOTHING " if skip_conflicts_returning else ""
    sql = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {_recordset(fields, 'r')} ORDER BY e._row "
        f"{on_conflict}RETURNING {', '.join(map(_quote, returning))}"
    )
    return sql, fields


@functools.cache
def _update_sql(
    model: type[Model], field_names: tuple[str, ...], bump_version: bool = False
) -> tuple[str, list]:
    meta = model._meta
    fields = [meta.pk] + [meta.get_field(name) for name in field_names]
    assignments = [f"{_quote(f.column)} = v.{_quote(f.column)}" for f in fields[1:]]
    pk = _quote(meta.pk.column)
    returning = ""
    if bump_version:
        version = _quote(meta.get_field(VERSION).column)
        assignments.append(f"{version} = t.{version} + 1")
        returning = f" RETURNING t.{pk}, t.{version}"
    sql = (
        f"UPDATE {_quote(meta.db_table)} AS t SET {', '.join(assignments)} "
        f"FROM {_recordset(fields, 'v')} WHERE t.{pk} = v.{pk}{returning}"
    )
    return sql, fields


def _execute(sql: str, fields: list, objects: list[Model], *, add: bool) -> list[tuple]:
    """Run `sql` with the objects' field values as one JSON document; return its rows."""
    rows = [{f.column: _json_value(f.pre_save(obj, add=add)) for f in fields} for obj in objects]
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])
        return cursor.fetchall() if cursor.description else []


def _mark_saved(obj: Model, pk) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


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
    if isinstance(value, FieldFile):  # a file column holds its name
        return value.name or ""
    return value
