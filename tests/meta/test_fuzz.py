"""Fuzzing the Messenger / Instagram webhook through the real view: any signed body is a 200 or
a 400 that names the problem, never a 500; a 400 stores nothing; and what the door accepts, the
worker processes without failing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings

from communications.models import WebhookDelivery
from tests.reliability.fuzzing import bent, stored_counts

from .conftest import PAGE_ID, PSID, post_signed

pytestmark = pytest.mark.django_db

EVENT = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": 1749416383000}
KITCHEN_SINK = {
    "object": "page",
    "entry": [
        {
            "id": PAGE_ID,
            "time": 1749416384000,
            "messaging": [
                {**EVENT, "message": {"mid": "m_T", "text": "hi", "reply_to": {"mid": "m_0"}}},
                {
                    **EVENT,
                    "message": {
                        "mid": "m_A",
                        "attachments": [
                            {
                                "type": "fallback",
                                "title": "Shop",
                                "payload": {"url": "https://x.y"},
                            },
                            {"type": "story_mention", "payload": {"url": "https://cdn/s"}},
                        ],
                        "reply_to": {"story": {"id": "1799", "url": "https://cdn/story"}},
                    },
                },
                {
                    "sender": {"id": PAGE_ID},
                    "recipient": {"id": PSID},
                    "timestamp": 1749416385000,
                    "message": {
                        "mid": "m_E",
                        "is_echo": True,
                        "app_id": 263902037430900,
                        "text": "from the inbox app",
                    },
                },
                {**EVENT, "delivery": {"mids": ["m_E"], "watermark": 1749416386000}},
                {**EVENT, "read": {"watermark": 1749416387000}},
                {**EVENT, "reaction": {"mid": "m_E", "action": "react", "emoji": "👍"}},
                {
                    **EVENT,
                    "postback": {"title": "Track my order", "payload": "TRACK", "mid": "m_P"},
                },
                {**EVENT, "message": {"mid": "m_D", "is_deleted": True}},
            ],
        }
    ],
}


def test_the_kitchen_sink_is_stored(client, messenger):
    response = post_signed(client, messenger, json.dumps(KITCHEN_SINK).encode())
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().outcome == "done"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=bent(KITCHEN_SINK))
def test_any_signed_payload_is_a_200_or_a_400_that_stores_nothing(client, messenger, payload):
    before = stored_counts()
    WebhookDelivery.objects.all().delete()
    response = post_signed(client, messenger, json.dumps(payload).encode())
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["detail"]
        assert stored_counts() == before
    else:
        failed = WebhookDelivery.objects.filter(outcome="failed").values_list("reason", flat=True)
        assert list(failed) == []
        retrying = WebhookDelivery.objects.filter(outcome="processing")
        assert list(retrying.values_list("reason", flat=True)) == []


@pytest.mark.parametrize(
    "body",
    [
        b"[" * (512 * 1024) + b"]" * (512 * 1024),
        b'{"object": "page", "entry": [], "x": "\\u0000"}',
        b'{"object": "page", "entry": [], "x": NaN}',
        b"\xff\xfe garbage" * 1000,
    ],
    ids=["1MiB-nested", "nul", "nan", "garbage"],
)
def test_hostile_json_is_a_400(client, messenger, body):
    response = post_signed(client, messenger, body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"]
