"""Fixtures for the reliability tests (live servers: tests/reliability/live.py)."""

import os

import pytest


@pytest.fixture(autouse=True)
def fresh_throttle_counters():
    """Rate counters live in Redis, not in the test database: start every test at zero.
    Only our own keys in our own Redis database (REDIS_URL) are touched."""
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis://"):
        yield
        return
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="switchboard:*:throttle:*", count=1000):
        client.delete(key)
    client.close()
    yield


@pytest.fixture
def server_password_hashers(settings):
    """Passwords the live servers can check (the suite's fast MD5 hasher is not in their list)."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
