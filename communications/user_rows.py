"""A signed-in user's row and the channels they may see, read in one precompiled statement.

Every API request and page starts by loading its user (by API token or by the session's user
id), and its first access check reads the user's channels (`access.visible_channel_ids`).
Django's and DRF's ORM queries for those cost more CPU to build than PostgreSQL spent
answering them (py-spy of uvicorn in `bench/realpath.py --shapes reads`): here one SQL text per
lookup, made once per process from the models' metadata, answers both. PostgreSQL only (ARRAY);
callers keep Django's own lookups elsewhere (SQLite, the embedded demo).
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections

from crm.models import Team

from .access import remember_visible_channel_ids
from .models import Channel


@dataclass(frozen=True)
class Found:
    user: object
    token_created: datetime | None


def supported(alias: str) -> bool:
    return connections[alias].vendor == "postgresql"


@cache
def _statement(alias: str, by: str) -> tuple[str, list[str]]:
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    fields = user_model._meta.concrete_fields
    quote = connections[alias].ops.quote_name
    links = Channel.teams.through._meta
    members = Team.members.through._meta
    user_pk = f"u.{quote(user_model._meta.pk.column)}"
    # A superuser's list goes unused: visible_channel_ids answers "all" for them first.
    channels = (
        f"ARRAY(SELECT DISTINCT l.{quote(links.get_field('channel').column)} "
        f"FROM {quote(links.db_table)} l JOIN {quote(members.db_table)} m "
        f"ON m.{quote(members.get_field('team').column)} = "
        f"l.{quote(links.get_field('team').column)} "
        f"WHERE m.{quote(members.get_field('user').column)} = {user_pk})"
    )
    columns = ", ".join(f"u.{quote(field.column)}" for field in fields)
    users = quote(user_model._meta.db_table)
    if by == "token":
        sql = (
            f"SELECT t.{quote(Token._meta.get_field('created').column)}, {channels}, {columns} "
            f"FROM {quote(Token._meta.db_table)} t JOIN {users} u ON {user_pk} = "
            f"t.{quote(Token._meta.get_field('user').column)} "
            f"WHERE t.{quote(Token._meta.pk.column)} = %s"
        )
    else:
        sql = f"SELECT NULL, {channels}, {columns} FROM {users} u WHERE {user_pk} = %s"
    return sql, [field.attname for field in fields]


def _find(alias: str, by: str, value) -> Found | None:
    sql, attnames = _statement(alias, by)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    created, channel_ids, *values = row
    user = get_user_model().from_db(alias, attnames, values)
    remember_visible_channel_ids(user, channel_ids)
    return Found(user, created)


def find_by_token(alias: str, key: str) -> Found | None:
    return _find(alias, "token", key)


def find_by_id(alias: str, user_id: int) -> Found | None:
    return _find(alias, "id", user_id)
