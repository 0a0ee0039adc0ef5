"""A transactional test's teardown flush survives a deadlock with another writer (a live
server's request still running for a closed page), instead of leaving its rows to the next
test. The deadlock is caused for real: a second connection holds the last table the TRUNCATE
needs and then asks for the first one it already holds."""

import re
import threading
import time

import psycopg
import pytest
from django.core.management.color import no_style
from django.db import OperationalError, connection

from tests import conftest

pytestmark = pytest.mark.django_db(transaction=True)


def flush_sql():
    """The flush's statements, and its TRUNCATE's tables in the order it locks them."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    sql_list = connection.ops.sql_flush(no_style(), tables)
    truncate = next(sql for sql in sql_list if sql.startswith("TRUNCATE"))
    return re.findall(r'"([^"]+)"', truncate), sql_list


def connect(autocommit=False):
    settings = connection.settings_dict
    return psycopg.connect(
        autocommit=autocommit,
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


def writer_crossing_the_flush(first_table: str, last_table: str, holding: threading.Event):
    """Holds `last_table` like an INSERT does, waits until the flush waits for it, then asks for
    `first_table`, which the flush already holds: a cycle PostgreSQL must break."""
    quote = connection.ops.quote_name

    def run():
        with connect() as writer, connect(autocommit=True) as watcher:
            writer.execute(f"LOCK TABLE {quote(last_table)} IN ROW EXCLUSIVE MODE")
            holding.set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE 'TRUNCATE%%'"
                ).fetchone()[0]
                if waiting:
                    break
                time.sleep(0.02)
            try:
                writer.execute(f"LOCK TABLE {quote(first_table)} IN ROW EXCLUSIVE MODE")
            except psycopg.errors.DeadlockDetected:
                pass  # this side was the victim: the flush goes on either way
            writer.rollback()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_flush_that_deadlocks_with_a_writer_runs_again_and_empties_the_tables():
    from crm.models import Team

    Team.objects.create(name="Left over")
    tables, sql_list = flush_sql()
    holding = threading.Event()
    thread = writer_crossing_the_flush(tables[0], tables[-1], holding)
    assert holding.wait(10)
    connection.ops.execute_sql_flush(sql_list)
    thread.join(15)
    assert not Team.objects.exists()


def test_without_running_it_again_the_flush_is_the_deadlock_victim(monkeypatch):
    """The scenario above is a real deadlock that the flush loses."""
    monkeypatch.setattr(conftest, "FLUSH_ATTEMPTS", 1)
    tables, sql_list = flush_sql()
    holding = threading.Event()
    thread = writer_crossing_the_flush(tables[0], tables[-1], holding)
    assert holding.wait(10)
    with pytest.raises(OperationalError) as raised:
        connection.ops.execute_sql_flush(sql_list)
    thread.join(15)
    assert conftest.is_deadlock(raised.value)
