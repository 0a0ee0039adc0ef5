"""Checks only the SQLite run of tests/search/test_search_sqlite.py collects (the file name
is outside pytest's test_*.py pattern, so the PostgreSQL suite never does)."""

import pytest
from django.db import connection

from communications.search_index import FTS_TABLE, install_sqlite
from tests import factories

pytestmark = pytest.mark.django_db


def test_this_is_the_sqlite_fts5_path():
    assert connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [FTS_TABLE])
        assert "fts5" in cursor.fetchone()[0]


def test_triggers_come_back_after_a_table_rebuild(api, channel):
    conversation = factories.ConversationFactory(channel=channel)
    with connection.cursor() as cursor:
        # What Django's SQLite ALTER TABLE does: copy, drop the old table (and its triggers)
        cursor.execute(f"DROP TRIGGER {FTS_TABLE}_insert")
    factories.MessageFactory(conversation=conversation, content="missed by the index")
    with connection.cursor() as cursor:
        install_sqlite(cursor)  # what post_migrate runs after every migrate
    factories.MessageFactory(conversation=conversation, content="indexed again")
    body = api.get("/api/v1/search/", {"q": "index", "type": "messages"}).json()
    assert len(body["messages"]["results"]) == 2
