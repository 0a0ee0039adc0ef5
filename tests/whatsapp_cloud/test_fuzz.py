"""Fuzzing the Cloud API webhook through the real view: any signed body is a 200 or a 400 that
names the problem, never a 500, and a 400 stores nothing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.whatsapp_cloud.parse import parse_payload
from integrations.whatsapp_cloud.schema import shape_error
from tests.reliability.fuzzing import bent, stored_counts

from .conftest import PHONE_NUMBER_ID, post_signed

pytestmark = pytest.mark.django_db

MESSAGE_BASE = {"from": "16505551234", "timestamp": "1750090702"}
KITCHEN_SINK = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
                        "messages": [
                            {
                                **MESSAGE_BASE,
                                "id": "wamid.T",
                                "type": "text",
                                "text": {"body": "hi"},
                            },
                            {
                                **MESSAGE_BASE,
                                "id": "wamid.L",
                                "type": "location",
                                "location": {"latitude": 52.5, "longitude": 13.4, "name": "Home"},
                                "context": {"id": "wamid.T"},
                            },
                            {
                                **MESSAGE_BASE,
                                "id": "wamid.B",
                                "type": "button",
                                "button": {"text": "Yes"},
                            },
                            {
                                **MESSAGE_BASE,
                                "id": "wamid.I",
                                "type": "interactive",
                                "interactive": {"button_reply": {"id": "b1", "title": "No"}},
                            },
                            {
                                **MESSAGE_BASE,
                                "id": "wamid.D",
                                "type": "document",
                                "document": {
                                    "id": "555",
                                    "mime_type": "application/pdf",
                                    "filename": "a.pdf",
                                },
                            },
                        ],
                        "statuses": [
                            {
                                "id": "wamid.OUT",
                                "status": "failed",
                                "errors": [
                                    {
                                        "code": 131047,
                                        "title": "Re-engagement",
                                        "error_data": {"details": "x"},
                                    }
                                ],
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=bent(KITCHEN_SINK))
def test_any_signed_payload_is_a_200_or_a_400_that_stores_nothing(client, wa_channel, payload):
    before = stored_counts()
    response = post_signed(client, wa_channel, json.dumps(payload).encode())
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["detail"]
        assert stored_counts() == before


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
    | st.integers()
    | st.lists(st.integers(), max_size=2)
)
def test_a_text_that_is_not_an_object_is_a_400_naming_it(client, wa_channel, text):
    payload = json.loads(json.dumps(KITCHEN_SINK))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = text
    response = post_signed(client, wa_channel, json.dumps(payload).encode())
    assert response.status_code == 400
    assert "messages[0].text" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * (512 * 1024) + b"]" * (512 * 1024),  # 1 MiB of nesting
        b'{"entry": ' + b'{"a": ' * 100 + b"1" + b"}" * 101,
        b'{"entry": [], "x": "\\u0000"}',
        b'{"entry": [], "x": NaN}',
    ],
    ids=["1MiB-nested", "deep-object", "nul", "nan"],
)
def test_hostile_json_is_a_400(client, wa_channel, body):
    response = post_signed(client, wa_channel, body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"]


@settings(max_examples=300, deadline=None)
@given(payload=bent(KITCHEN_SINK))
def test_what_the_schema_admits_parses(payload):
    """The door checks only the schema (webhook.inspect): whatever it admits, parse.py must
    read without a PayloadError, or an accepted delivery would fail in the worker."""
    if shape_error(payload) is None:
        parse_payload(payload, phone_number_id=PHONE_NUMBER_ID)


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document", "sticker"])
def test_a_media_message_without_its_media_is_a_400(client, wa_channel, kind):
    payload = json.loads(json.dumps(KITCHEN_SINK))
    payload["entry"][0]["changes"][0]["value"]["messages"] = [
        {**MESSAGE_BASE, "id": "wamid.M", "type": kind}
    ]
    before = stored_counts()
    response = post_signed(client, wa_channel, json.dumps(payload).encode())
    assert response.status_code == 400
    assert kind in response.json()["detail"]
    assert stored_counts() == before
