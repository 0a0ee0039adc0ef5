"""Fuzzing the API channel's inbound endpoint and the Matrix appservice through their real
views: any authenticated body is answered 2xx or 400 with the reason — never a 500 — and a
400 stores nothing."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from rest_framework.test import APIClient

from communications.models import Channel
from integrations.matrix import settings_cache
from integrations.matrix.models import MatrixConnection, MatrixRoom, MatrixSettings
from tests import factories

from .fuzzing import bent, stored_counts

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- API channel -----------------------------------------------------------------------------
API_PAYLOAD = {
    "external_id": "ext-1",
    "conversation_id": "thread-9",
    "sender": {
        "id": "cust-1",
        "name": "Ann",
        "username": "ann",
        "phone": "+15551234567",
        "email": "ann@example.com",
        "avatar_url": "https://example.com/a.png",
    },
    "text": "hello",
    "timestamp": "2026-01-31T12:00:00Z",
    "subject": "Order",
    "attachments": [
        {
            "filename": "a.txt",
            "mime_type": "text/plain",
            "data_base64": base64.b64encode(b"attached").decode(),
        }
    ],
}


@pytest.fixture
def inbound(db):
    cache.clear()  # the webhook throttle counts per minute in the cache
    channel = factories.ChannelFactory(secrets={"inbound_token": "tok"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer tok")
    return client, f"/api/v1/channels/{channel.pk}/inbound/"


@FUZZ
@given(payload=bent(API_PAYLOAD))
def test_api_channel_inbound_answers_2xx_or_400_never_500(inbound, payload):
    client, url = inbound
    before = stored_counts()
    response = client.post(url, json.dumps(payload), content_type="application/json")
    assert response.status_code in (200, 201, 400), response.content
    if response.status_code == 400:
        assert response.json()
        assert stored_counts() == before


@pytest.mark.parametrize(
    "body",
    [
        "[" * (512 * 1024) + "]" * (512 * 1024),
        '{"external_id": "x", "sender": {"id": "\\u0000"}}',
        '{"external_id": "x", "sender": {"id": "\\ud800"}, "text": "a"}',
        '{"external_id": "x", "sender": {"id": "a"}, "text": NaN}',
    ],
    ids=["1MiB-nested", "nul", "lone-surrogate", "nan"],
)
def test_api_channel_refuses_hostile_json_with_a_400(inbound, body):
    client, url = inbound
    before = stored_counts()
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "JSON parse error" in response.json()["detail"]
    assert stored_counts() == before


# -- Matrix appservice -----------------------------------------------------------------------
SERVER = "example.org"
ROOM = "!portal:example.org"
GHOST = f"@whatsapp_15551234567:{SERVER}"


def _event(event_id: str, **fields) -> dict:
    return {"event_id": event_id, "room_id": ROOM, "origin_server_ts": 1750000000000, **fields}


TRANSACTION = {
    "events": [
        _event(
            "$text",
            type="m.room.message",
            sender=GHOST,
            content={
                "msgtype": "m.text",
                "body": "hello",
                "m.relates_to": {"m.in_reply_to": {"event_id": "$older"}},
            },
        ),
        _event(
            "$edit",
            type="m.room.message",
            sender=GHOST,
            content={
                "msgtype": "m.text",
                "body": "* hi",
                "m.new_content": {"msgtype": "m.text", "body": "hi"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$text"},
            },
        ),
        _event(
            "$loc",
            type="m.room.message",
            sender=GHOST,
            content={"msgtype": "m.location", "body": "Home", "geo_uri": "geo:52.5,13.4"},
        ),
        _event(
            "$react",
            type="m.reaction",
            sender=GHOST,
            content={
                "m.relates_to": {"rel_type": "m.annotation", "event_id": "$text", "key": "👍"}
            },
        ),
        _event("$redact", type="m.room.redaction", sender=GHOST, redacts="$loc", content={}),
        _event(
            "$status",
            type="com.beeper.message_send_status",
            sender=f"@whatsappbot:{SERVER}",
            content={
                "status": "FAIL_PERMANENT",
                "reason": "m.foreign_network_error",
                "m.relates_to": {"rel_type": "m.reference", "event_id": "$ours"},
            },
        ),
        _event(
            "$member",
            type="m.room.member",
            sender=GHOST,
            state_key=GHOST,
            content={"membership": "join", "displayname": "Ann (WA)"},
        ),
    ],
    "ephemeral": [
        {
            "type": "m.receipt",
            "room_id": ROOM,
            "content": {"$text": {"m.read": {GHOST: {"ts": 1}}}},
        },
        {"type": "m.typing", "room_id": ROOM, "content": {"user_ids": [GHOST]}},
    ],
}


class FakeHomeserver:
    """A real HTTP server for the few client-API calls the mapper makes: profiles answer,
    everything else is M_NOT_FOUND (a room we are not in, no media)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if "/profile/" in self.path:
                    return self._answer(200, {"displayname": "Ann (WA)"})
                self._answer(404, {"errcode": "M_NOT_FOUND", "error": "not here"})

            do_PUT = do_POST = do_GET

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def appservice(db):
    cache.clear()
    homeserver = FakeHomeserver()
    channel = Channel.objects.create(kind=Channel.Kind.WHATSAPP, name="WhatsApp")
    MatrixSettings.objects.create(
        pk=1,
        whatsapp_mode="matrix",
        homeserver_url=homeserver.url,
        server_name=SERVER,
        auth_mode=MatrixSettings.AuthMode.APPSERVICE,
        secrets={"as_token": "as", "hs_token": "hs"},
    )
    settings_cache.invalidate()
    owner = factories.UserFactory()
    connection = MatrixConnection.objects.create(
        user=owner, matrix_user_id=f"@manager:{SERVER}", secrets={"access_token": "t"}
    )
    MatrixRoom.objects.create(
        room_id=ROOM,
        connection=connection,
        kind=MatrixRoom.Kind.PORTAL,
        receiver="15550000000",
        channel=channel,  # one channel per connected number (issue 10)
    )
    yield
    settings_cache.invalidate()
    homeserver.close()


def _put(client, txn: int, body: str):
    return client.put(
        f"/matrix/appservice/_matrix/app/v1/transactions/{txn}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer hs",
    )


@FUZZ
@given(transaction=bent(TRANSACTION))
def test_appservice_transactions_answer_200_or_400_never_500(client, appservice, transaction):
    before = stored_counts()
    response = _put(client, 1, json.dumps(transaction))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]
        assert stored_counts() == before


def test_the_documented_transaction_is_stored(client, appservice):
    response = _put(client, 2, json.dumps(TRANSACTION))
    assert response.status_code == 200, response.content
    assert stored_counts()[0] == 2  # the text (edited) and the location (redacted)


@pytest.mark.parametrize(
    "body",
    ["[" * (512 * 1024) + "]" * (512 * 1024), "[]", '{"events": {}}', '{"events": ["x"]}'],
    ids=["1MiB-nested", "list", "events-object", "event-string"],
)
def test_appservice_refuses_unexpected_shapes_with_a_400(client, appservice, body):
    response = _put(client, 3, body)
    assert response.status_code == 400, response.content
    assert response.json()["errcode"] == "M_BAD_JSON"


@settings(FUZZ, max_examples=40)
@given(transaction=bent(TRANSACTION))
def test_the_sync_feeder_skips_bad_events_and_keeps_the_good_ones(appservice, transaction):
    """The mapper itself (called by sync and backfill with events one by one) never raises on
    an event's shape: a bent event is skipped, the documented text event is still stored."""
    from integrations.matrix import mapper

    good = json.loads(json.dumps(TRANSACTION["events"][0]))
    good["event_id"] = "$always-good"
    events = transaction.get("events") if isinstance(transaction, dict) else None
    events = events if isinstance(events, list) else [transaction]
    mapper.handle_events([*events, good], source="sync")
    from communications.models import Message

    assert Message.objects.filter(external_id="$always-good").exists()
