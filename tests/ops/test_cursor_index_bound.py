"""Keyset cursors must bound the index scan, or a deep page reads every row above it.

Found by bench/run.py: at 100k conversations a deep list page scanned 43,816 index entries
(29 ms) because `(t < x) OR (t = x AND id < y)` is only a filter; the extra `t <= x` makes it
the scan's start. The plan is read with EXPLAIN on PostgreSQL.
"""

import json

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from communications.api.params import encode_cursor
from communications.selectors import conversation_page, message_page
from tests import factories

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="reads PostgreSQL query plans"
)


def index_conditions(sql: str, params) -> list[str]:
    with connection.cursor() as cursor:
        # Tiny test tables would be read sequentially; ask for the plan of a big one.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found = []

    def walk(node):
        if "Index Cond" in node:
            found.append(f"{node.get('Index Name')}: {node['Index Cond']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def last_query(fn, *args):
    with CaptureQueriesContext(connection) as queries:
        fn(*args)
    return queries.captured_queries


@pytest.mark.django_db
def test_conversation_cursor_bounds_the_index_scan(channel, manager):
    conversations = [factories.ConversationFactory(channel=channel) for _ in range(5)]
    cursor = encode_cursor(conversations[2].last_message_at, conversations[2].pk)
    params = QueryDict(f"page_size=2&cursor={cursor}")
    queries = last_query(conversation_page, manager, params)
    sql = queries[-1]["sql"]
    # The captured SQL has its parameters inlined already.
    conditions = index_conditions(sql.replace("%", "%%"), None)
    assert any("last_message_at <=" in c for c in conditions), conditions


@pytest.mark.django_db
def test_message_cursor_bounds_the_index_scan(channel):
    conversation = factories.ConversationFactory(channel=channel)
    messages = [factories.MessageFactory(conversation=conversation) for _ in range(5)]
    cursor = encode_cursor(messages[2].created_at, messages[2].pk)
    queries = last_query(message_page, conversation, QueryDict(f"page_size=2&before={cursor}"))
    sql = next(q["sql"] for q in queries if "communications_message" in q["sql"].split("FROM")[1])
    conditions = index_conditions(sql.replace("%", "%%"), None)
    assert any("msg_thread" in c and "created_at <=" in c for c in conditions), conditions
