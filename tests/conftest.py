"""Shared fixtures. Tests run against the database DATABASE_URL names (PostgreSQL under
`scripts/test`); data comes from factories in tests/factories.py."""

import time

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.celery import app as celery_app
from tests import factories


@pytest.fixture(autouse=True, scope="session")
def eager_celery():
    """Tasks run in the test process (after commit, as in production); no broker needed."""
    celery_app.conf.task_always_eager = True
    yield


FLUSH_ATTEMPTS = 5


def is_deadlock(error: Exception) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == "40P01"


@pytest.fixture(autouse=True, scope="session")
def flush_survives_deadlocks():
    """A transactional test ends with a flush: one TRUNCATE of every table. A live server
    (browser tests) may still be writing for the page just closed; when that writer and the
    TRUNCATE wait on each other, PostgreSQL aborts one of them, often the flush, and the next
    test then starts on the last one's rows. The flush is one transaction, so after a deadlock
    nothing of it happened and it is run again."""
    operations = type(connection.ops)
    flush = operations.execute_sql_flush

    def execute_sql_flush_again_after_deadlock(self, sql_list):
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return flush(self, sql_list)
            except OperationalError as error:
                if not is_deadlock(error) or attempt == FLUSH_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)

    operations.execute_sql_flush = execute_sql_flush_again_after_deadlock
    yield
    operations.execute_sql_flush = flush


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_counters():
    """Rate counters (crm/throttle.py) live in Redis, not in the test database, and outlive a
    test: start every test at zero. Only the throttle keys of the test's own Redis database."""
    from django.core.cache import cache

    from crm import throttle

    throttle._local = throttle._LocalCounters()
    throttle._shared_down_until = 0.0
    if throttle._is_redis():
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=cache.make_key(f"{throttle.PREFIX}:*"), count=1000))
        if keys:
            client.delete(*keys)
    yield


@pytest.fixture(autouse=True)
def no_drainer_heartbeat():
    """A drainer's heartbeat (webhooks.DRAINER_KEY) outlives its test by a few seconds and
    would stop the next test's kicks: every test starts with no drainer seen."""
    from django.core.cache import cache

    from communications import webhooks

    webhooks._drainer_seen_until = 0.0
    cache.delete(webhooks.DRAINER_KEY)
    yield
    webhooks._drainer_seen_until = 0.0


@pytest.fixture
def channel(db):
    return factories.ChannelFactory()


@pytest.fixture
def manager(db, channel):
    """A manager in a team attached to `channel`."""
    team = factories.TeamFactory()
    channel.teams.add(team)
    user = factories.UserFactory(username="manager")
    team.members.add(user)
    return user


@pytest.fixture
def api(manager):
    client = APIClient()
    token = Token.objects.create(user=manager)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


class QueryCounter:
    """Counts queries in a block and shows them all when the count is not the expected one."""

    def __init__(self):
        self.context = CaptureQueriesContext(connection)

    def __enter__(self):
        self.context.__enter__()
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)

    @property
    def count(self) -> int:
        return len(self.context.captured_queries)

    def explain(self) -> str:
        return "\n".join(
            f"{i}. {q['sql'][:300]}" for i, q in enumerate(self.context.captured_queries, 1)
        )


@pytest.fixture
def count_queries():
    return QueryCounter
