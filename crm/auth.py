"""Password sign-in that an unauthenticated crowd cannot use to starve the database pool.

Django's ModelBackend looks the user up and then hashes the password (hundreds of milliseconds
of CPU by design) while the request still holds its pooled database connection: a hundred
concurrent sign-ins held every connection and managers' requests timed out waiting for one.
Here the connection goes back to the pool before hashing, and at most LOGIN_CONCURRENT_HASHES
hashes run at once per process; a sign-in that waits longer than LOGIN_HASH_WAIT_SECONDS for
its turn is refused as busy (429 from the login views), never a 500.
"""

import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections, router


class SignInBusy(Exception):
    """Too many password checks in progress in this process."""


_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def _hash_slots() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max(1, settings.LOGIN_CONCURRENT_HASHES))
        return _slots


def release_connection(alias: str) -> None:
    """Hand the connection back to the pool (or close it); reopened on the next query.
    Not inside a transaction: closing there would roll it back."""
    connection = connections[alias]
    if not connection.in_atomic_block:
        connection.close()


class PoolFriendlyModelBackend(ModelBackend):
    def get_user(self, user_id):
        """The session's user, with the channels they may see in the same statement on
        PostgreSQL (communications/user_rows.py); Django's own lookup elsewhere."""
        from communications import user_rows  # the core app, loaded after this module

        user_model = get_user_model()
        primary_key = user_model._meta.pk
        try:  # a session holding something that is no user id (or beyond the column): nobody
            user_id = primary_key.to_python(user_id)
            if user_id is None:
                return None
            primary_key.run_validators(user_id)
        except ValidationError:
            return None
        alias = router.db_for_read(user_model)
        if not user_rows.supported(alias):
            return super().get_user(user_id)
        found = user_rows.find_by_id(alias, user_id)
        if found is None or not self.user_can_authenticate(found.user):
            return None
        return found.user

    def authenticate(self, request, username=None, password=None, **kwargs):
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        manager = user_model._default_manager
        try:
            user = manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            user = None
        release_connection(manager.db)
        slots = _hash_slots()
        if not slots.acquire(timeout=settings.LOGIN_HASH_WAIT_SECONDS):
            raise SignInBusy
        try:
            if user is None:
                # Hash anyway, so an unknown username takes as long as a wrong password.
                user_model().set_password(password)
                return None
            valid = user.check_password(password)
        finally:
            slots.release()
        if valid and self.user_can_authenticate(user):
            return user
        return None
