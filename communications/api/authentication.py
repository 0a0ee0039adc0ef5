"""API tokens checked in one statement that also reads the channels the user may see
(communications/user_rows.py; the embedded SQLite demo keeps DRF's two queries). The refusals
are DRF's own words."""

from django.db import router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from .. import user_rows


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's; the user arrives with its visible channels."""

    def authenticate_credentials(self, key):
        alias = router.db_for_read(Token)
        if not user_rows.supported(alias):
            return super().authenticate_credentials(key)
        if "\x00" in key:  # PostgreSQL text cannot hold NUL: no token has one
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        found = user_rows.find_by_token(alias, key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = found.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token.from_db(
            alias, ["key", "user_id", "created"], [key, user.pk, found.token_created]
        )
        token.user = user
        return user, token
