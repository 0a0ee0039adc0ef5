"""API tokens checked in one statement that also reads the channels the user may see.

DRF's TokenAuthentication builds an ORM query for the token and its user, and the first
access check (`access.visible_channel_ids`) another for the user's channels: building those
two querysets cost more CPU than PostgreSQL spent answering them (py-spy of uvicorn in
`bench/realpath.py --shapes reads`: ~27 % of a list request). Here one SQL text, made once
per process from the models' metadata, answers both (on PostgreSQL; the embedded SQLite demo
keeps DRF's two queries). The refusals are DRF's own words.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from crm.models import Team

from ..access import remember_visible_channel_ids
from ..models import Channel


@cache
def _statement() -> tuple[str, list[str]]:
    user_model = get_user_model()
    user_columns = [field.column for field in user_model._meta.concrete_fields]
    user_fields = [field.attname for field in user_model._meta.concrete_fields]
    links = Channel.teams.through._meta
    members = Team.members.through._meta
    quote = connections[router.db_for_read(Token)].ops.quote_name
    columns = ", ".join(f"u.{quote(column)}" for column in user_columns)
    sql = (
        f"SELECT t.{quote('created')}, "
        f"CASE WHEN u.{quote('is_superuser')} THEN NULL ELSE ARRAY("
        f"SELECT DISTINCT l.{quote(links.get_field('channel').column)} "
        f"FROM {quote(links.db_table)} l JOIN {quote(members.db_table)} m "
        f"ON m.{quote(members.get_field('team').column)} = l.{quote(links.get_field('team').column)} "
        f"WHERE m.{quote(members.get_field('user').column)} = u.{quote(user_model._meta.pk.column)}"
        f") END, {columns} "
        f"FROM {quote(Token._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u ON u.{quote(user_model._meta.pk.column)} "
        f"= t.{quote(Token._meta.get_field('user').column)} "
        f"WHERE t.{quote(Token._meta.pk.column)} = %s"
    )
    return sql, user_fields


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's; the user arrives with its visible channels."""

    def authenticate_credentials(self, key):
        if "\x00" in key:  # PostgreSQL text cannot hold NUL: no token has one
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        alias = router.db_for_read(Token)
        if connections[alias].vendor != "postgresql":  # SQLite (the embedded demo): DRF's way
            return super().authenticate_credentials(key)
        sql, user_fields = _statement()
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        created, channel_ids, *user_values = row
        user = get_user_model().from_db(alias, user_fields, user_values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if channel_ids is not None:
            remember_visible_channel_ids(user, channel_ids)
        token = Token.from_db(alias, ["key", "user_id", "created"], [key, user.pk, created])
        token.user = user
        return user, token
