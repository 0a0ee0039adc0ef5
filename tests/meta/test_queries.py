"""What a Messenger delivery costs: two queries at the door, a fixed number in the worker
however many messages a batch holds."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from communications import webhooks
from communications.models import Message

from .conftest import fixture_bytes, post_signed

pytestmark = pytest.mark.django_db


def delivery(n: int) -> bytes:
    body = json.loads(fixture_bytes("messenger_text.json"))
    event = body["entry"][0]["messaging"][0]
    event["sender"]["id"] = f"psid-{n}"
    event["message"]["mid"] = f"m_Q{n}"
    return json.dumps(body).encode()


def test_the_door_costs_two_queries(client, messenger, monkeypatch):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    with CaptureQueriesContext(connection) as queries:
        assert post_signed(client, messenger, delivery(0)).status_code == 200
    # The channel, the INSERT … ON CONFLICT DO NOTHING.
    assert len(queries) == 2, [q["sql"] for q in queries]


@pytest.mark.parametrize("deliveries", [1, 8])
def test_the_worker_costs_the_same_for_one_or_many(client, messenger, monkeypatch, deliveries):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    for n in range(deliveries):
        post_signed(client, messenger, delivery(n))
    with CaptureQueriesContext(connection) as queries:
        assert webhooks.drain() == deliveries
    assert Message.objects.count() == deliveries
    # The claim returning its rows, the channel, ingest's batch (in a savepoint here: 10), one
    # UPDATE of the verdicts, two claims finding the log empty (23 before the claim returned
    # its rows and the verdicts were one UPDATE).
    assert len(queries) == 16, "\n".join(q["sql"][:200] for q in queries)
