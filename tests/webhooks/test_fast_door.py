"""The fast door (communications/webhook_door.py) through the real ASGI application: the happy
path stored by group commit, answered only after COMMIT; everything else answered by Django."""

import asyncio
import json

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from communications import webhook_door, webhooks
from communications.models import Channel, Message, WebhookDelivery
from integrations.whatsapp_cloud.webhook import signature_for
from tests.webhooks.test_webhook_log import text_delivery
from tests.whatsapp_cloud.conftest import APP_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

API_TOKEN = "api-inbound-token"


@pytest.fixture
async def door(monkeypatch):
    """An HTTP client on crm.asgi.application; kicks recorded instead of queued."""
    from crm.asgi import application

    kicked = []
    monkeypatch.setattr(webhooks, "kick", lambda: kicked.append(1) or True)
    webhook_door.channel_cache.clear()
    webhook_door.writer.batches = webhook_door.writer.statements = 0
    transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        client.kicked = kicked
        yield client
    await webhook_door.writer.close()
    await sync_to_async(connections.close_all)()


def signed(body: bytes) -> dict:
    return {
        "X-Hub-Signature-256": signature_for(APP_SECRET, body),
        "Content-Type": "application/json",
    }


def post_wa(door, channel, body: bytes, headers: dict | None = None):
    return door.post(
        f"/webhooks/whatsapp/{channel.pk}/", content=body, headers=headers or signed(body)
    )


@sync_to_async
def deliveries():
    return list(WebhookDelivery.objects.order_by("id").values_list("verdict", "outcome", "id"))


@pytest.fixture
def api_channel(db):
    return Channel.objects.create(
        kind=Channel.Kind.API, name="API", secrets={"inbound_token": API_TOKEN}
    )


def api_body(external_id: str, text: str = "hi") -> bytes:
    return json.dumps(
        {"external_id": external_id, "sender": {"id": "cust-1"}, "text": text}
    ).encode()


async def test_an_accepted_delivery_is_committed_before_its_200(door, wa_channel, monkeypatch):
    seen_before_answer = []

    def kick(ids):  # runs after the batch and before its requests are answered
        seen_before_answer.append(
            WebhookDelivery.objects.filter(pk__in=ids, verdict="accepted").count()
        )
        connections.close_all()

    monkeypatch.setattr(webhook_door, "_kick", kick)
    response = await post_wa(door, wa_channel, text_delivery("wamid.D1"))
    assert seen_before_answer == [1]  # visible on another connection: committed
    assert response.status_code == 200 and response.json() == {
        "received": True,
        "duplicate": False,
    }
    # Read on another connection (Django's): the row is committed, waiting for the worker.
    [(verdict, outcome, _id)] = await deliveries()
    assert (verdict, outcome) == ("accepted", "pending")
    assert (webhook_door.writer.batches, webhook_door.writer.statements) == (1, 2)
    assert await sync_to_async(webhooks.drain)() == 1
    assert await sync_to_async(Message.objects.get)(external_id="wamid.D1")


async def test_when_the_door_cannot_store_django_answers_and_nothing_is_200_unstored(
    door, wa_channel, monkeypatch
):
    monkeypatch.setattr(webhook_door, "_INSERT_ACCEPTED", "INSERT INTO no_such_table VALUES (1)")
    response = await post_wa(door, wa_channel, text_delivery("wamid.D2"))
    # The batch failed: the request fell through to the Django view, which stored it itself.
    assert response.status_code == 200
    assert [(v, o) for v, o, _ in await deliveries()] == [("accepted", "pending")]
    assert webhook_door.writer.batches == 0

    def broken(*args, **kwargs):
        raise RuntimeError("database is gone")

    monkeypatch.setattr(webhooks, "log_accepted", broken)
    transport = httpx.ASGITransport(app=door._transport.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await post_wa(client, wa_channel, text_delivery("wamid.D3"))
    assert response.status_code == 500  # never a 200 for a delivery that is not stored
    assert len(await deliveries()) == 1


async def test_fifty_identical_concurrent_deliveries_are_one_message(door, wa_channel):
    body = text_delivery("wamid.SAME")
    responses = await asyncio.gather(*(post_wa(door, wa_channel, body) for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 49
    rows = await deliveries()
    assert sorted(v for v, _, _ in rows) == ["accepted"] + ["duplicate"] * 49
    # Group commit: far fewer batches than requests, at most 3 statements each (COMMIT too).
    writer = webhook_door.writer
    assert 1 <= writer.batches < 50
    assert writer.statements <= 3 * writer.batches
    assert door.kicked and len(door.kicked) <= writer.batches
    await sync_to_async(webhooks.drain)()
    assert await sync_to_async(Message.objects.filter(external_id="wamid.SAME").count)() == 1


async def test_distinct_concurrent_deliveries_share_a_commit(door, wa_channel):
    bodies = [text_delivery(f"wamid.C{i}", f"text {i}") for i in range(40)]
    responses = await asyncio.gather(*(post_wa(door, wa_channel, b) for b in bodies))
    assert {r.status_code for r in responses} == {200}
    writer = webhook_door.writer
    assert writer.batches < 40 and writer.statements == 2 * writer.batches  # no duplicates
    assert await sync_to_async(webhooks.drain)() == 40
    assert await sync_to_async(Message.objects.filter(channel=wa_channel).count)() == 40


async def test_batches_after_the_first_open_no_redis_connection(door, wa_channel, monkeypatch):
    """The throttle counters run on the writer's own thread, which keeps its cache: a thread
    hop per batch used to build a new cache, pool and Redis connection every time."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache
    from redis.connection import AbstractConnection

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("the embedded mode's cache is in memory")
    made = []
    original = AbstractConnection.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "__init__", counting)
    assert (await post_wa(door, wa_channel, text_delivery("wamid.R0"))).status_code == 200
    made.clear()
    for i in range(1, 6):
        assert (await post_wa(door, wa_channel, text_delivery(f"wamid.R{i}"))).status_code == 200
    assert webhook_door.writer.batches == 6
    assert made == []


async def test_refusals_are_answered_by_the_django_view(door, wa_channel):
    body = text_delivery("wamid.BAD")
    response = await post_wa(door, wa_channel, body, {"X-Hub-Signature-256": "sha256=00"})
    assert response.status_code == 401
    malformed = b'{"object": "whatsapp_business_account"}'
    response = await post_wa(door, wa_channel, malformed)
    assert response.status_code == 400 and "'entry'" in response.json()["detail"]
    response = await door.post("/webhooks/whatsapp/999999/", content=body, headers=signed(body))
    assert response.status_code == 404
    assert [v for v, _, _ in await deliveries()] == ["bad_signature", "malformed"]
    assert webhook_door.writer.batches == 0


async def test_the_channel_rate_limit_refuses_above_it_with_429(door, wa_channel, settings):
    settings.WEBHOOK_RATE_LIMIT = "3/minute"
    bodies = [text_delivery(f"wamid.T{i}") for i in range(5)]
    responses = await asyncio.gather(*(post_wa(door, wa_channel, b) for b in bodies))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 429, 429]
    refused = [r for r in responses if r.status_code == 429]
    assert refused[0].headers["Retry-After"] == "60"
    assert len(await deliveries()) == 3


async def test_an_address_that_failed_authentication_too_often_is_refused(
    door, wa_channel, settings
):
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = "2/minute"
    body = text_delivery("wamid.X")
    for _ in range(2):
        await post_wa(door, wa_channel, body, {"X-Hub-Signature-256": "sha256=00"})
    response = await post_wa(door, wa_channel, body)  # correctly signed, but from that address
    assert response.status_code == 429
    assert [v for v, _, _ in await deliveries()] == ["bad_signature", "bad_signature"]


async def test_api_channel_prefer_async_is_202_from_the_door_else_django(door, api_channel):
    auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    url = f"/api/v1/channels/{api_channel.pk}/inbound/"
    response = await door.post(
        url, content=api_body("ext-1"), headers={**auth, "Prefer": "respond-async"}
    )
    assert response.status_code == 202
    first = response.json()
    assert first["duplicate"] is False and webhook_door.writer.batches == 1
    again = await door.post(
        url, content=api_body("ext-1"), headers={**auth, "Prefer": "respond-async"}
    )
    assert again.status_code == 202 and again.json()["duplicate"] is True
    # Without Prefer the answer carries the stored message: Django's synchronous view.
    response = await door.post(url, content=api_body("ext-2"), headers=auth)
    assert response.status_code == 201 and response.json()["external_id"] == "ext-2"
    assert webhook_door.writer.batches == 2
    # Through /webhooks/api/ too.
    response = await door.post(
        f"/webhooks/api/{api_channel.pk}/", content=api_body("ext-3"), headers=auth
    )
    assert response.status_code == 200 and webhook_door.writer.batches == 3


async def test_a_disabled_api_channel_is_409_from_django(door, api_channel):
    await sync_to_async(Channel.objects.filter(pk=api_channel.pk).update)(is_active=False)
    response = await door.post(
        f"/api/v1/channels/{api_channel.pk}/inbound/",
        content=api_body("ext-9"),
        headers={
            "Authorization": f"Bearer {API_TOKEN}",
            "Content-Type": "application/json",
            "Prefer": "respond-async",
        },
    )
    assert response.status_code == 409
    assert await deliveries() == []


async def test_unknown_hosts_go_to_django_which_refuses_them(door, wa_channel):
    body = text_delivery("wamid.H")
    response = await door.post(
        f"/webhooks/whatsapp/{wa_channel.pk}/",
        content=body,
        headers={**signed(body), "Host": "evil.example"},
    )
    assert response.status_code == 400
    assert webhook_door.writer.batches == 0


async def test_liveness_answers_without_django(door):
    response = await door.get("/health/live/")
    assert response.status_code == 200 and response.text == "ok"


async def test_without_postgresql_django_answers_every_webhook(door, wa_channel, monkeypatch):
    """The embedded mode (SQLite): the door's psycopg writer is never tried."""
    assert webhook_door.stores_in_postgresql()  # this suite's database
    monkeypatch.setattr(webhook_door, "stores_in_postgresql", lambda: False)
    response = await post_wa(door, wa_channel, text_delivery("wamid.EMBEDDED"))
    assert response.status_code == 200
    assert (webhook_door.writer.batches, webhook_door.writer.pool) == (0, None)
    assert [verdict for verdict, _outcome, _id in await deliveries()] == ["accepted"]


@pytest.mark.parametrize(
    "payload",
    [
        {"external_id": "e1", "sender": {"id": "c1"}, "text": "hi"},
        {"external_id": " e1 ", "sender": {"id": " c1", "name": " N "}, "text": " hi\n"},
        {"external_id": "e1", "sender": {"id": "c1"}, "text": "hi", "conversation_id": "t"},
        {
            "external_id": "e1",
            "sender": {"id": "c1", "phone": "+1555"},
            "text": "x",
            "subject": "s",
        },
        {"external_id": "e1", "sender": {"id": "c1"}, "text": "hi", "timestamp": None},
        {"external_id": "e1", "sender": {"id": "c1"}, "text": "hi", "attachments": []},
        {"external_id": "e1", "sender": {"id": "c1", "email": "a@b.example"}, "text": "hi"},
        {
            "external_id": "e1",
            "sender": {"id": "c1"},
            "text": "hi",
            "timestamp": "2026-01-01T00:00Z",
        },
        {"external_id": "  ", "sender": {"id": "c1"}, "text": "hi"},
        {"external_id": "e1", "sender": {"id": "c1"}, "text": " \x1c "},
        {"external_id": "e1", "sender": {"id": "c1"}, "text": "a\x00b"},
        {"external_id": "e" * 256, "sender": {"id": "c1"}, "text": "hi"},
        {"external_id": "e1", "sender": {"id": "c1", "phone": "1" * 33}, "text": "hi"},
        {"external_id": 5, "sender": {"id": "c1"}, "text": "hi"},
        {"external_id": "e1", "sender": "c1", "text": "hi"},
        {"external_id": "e1", "sender": {"id": "c1"}},
        [],
    ],
)
def test_the_api_channels_fast_check_agrees_with_the_serializer(payload):
    from integrations.api.views import ApiChannelReceiver, InboundPayloadSerializer

    serializer = InboundPayloadSerializer(data=payload)
    body = json.dumps(payload).encode()
    if serializer.is_valid():
        assert ApiChannelReceiver._validated(body) == serializer.validated_data
    else:
        with pytest.raises(webhooks.Malformed):
            ApiChannelReceiver._validated(body)


def test_plain_text_deliveries_skip_the_serializer(monkeypatch):
    from integrations.api import views

    def no_serializer(*args, **kwargs):
        raise AssertionError("the serializer ran")

    monkeypatch.setattr(views, "InboundPayloadSerializer", no_serializer)
    body = api_body(" ext-7 ", " hello ")
    assert views.ApiChannelReceiver._validated(body)["external_id"] == "ext-7"
    with pytest.raises(AssertionError):
        views.ApiChannelReceiver._validated(json.dumps({"external_id": "e"}).encode())
