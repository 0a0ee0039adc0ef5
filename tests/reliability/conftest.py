"""Fixtures for the reliability tests (live servers: tests/reliability/live.py)."""

import pytest


@pytest.fixture
def server_password_hashers(settings):
    """Passwords the live servers can check (the suite's fast MD5 hasher is not in their list)."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
