"""The inbox websocket through the real ASGI app (crm.asgi.application), on both layers."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from communications import consumers
from communications.models import RealtimeEvent

from .conftest import connect, ingest, ready, receive

pytestmark = pytest.mark.asyncio


async def events_of(communicator, count: int) -> list[dict]:
    return [await receive(communicator) for _ in range(count)]


async def test_manager_receives_their_channel_and_another_team_receives_nothing(layer, world):
    alice, _ = await connect(world["alice"])
    bob, _ = await connect(world["bob"])
    await ready(alice)
    await ready(bob)

    result = await ingest(world["a"], "hello from a customer")

    received = await events_of(alice, 2)
    assert [e["type"] for e in received] == ["conversation.created", "message.created"]
    assert received[1]["data"]["content"] == "hello from a customer"
    assert received[1]["data"]["id"] == result.message.pk
    assert received[0]["id"] < received[1]["id"]
    assert await bob.receive_nothing(timeout=0.5)
    await alice.disconnect()
    await bob.disconnect()


async def test_superuser_receives_every_channel(layer, world):
    admin, _ = await connect(world["admin"])
    await ready(admin)
    await ingest(world["b"], "on channel b")
    received = await events_of(admin, 2)
    assert received[1]["data"]["content"] == "on channel b"
    await admin.disconnect()


async def test_anonymous_is_refused_with_4401(layer, world):
    communicator, connected = await connect(None)
    assert connected
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_foreign_origin_is_refused(layer, world):
    communicator, connected = await connect(world["alice"], origin=b"http://evil.example")
    assert connected is False


async def test_resume_after_reconnect_delivers_missed_events_once(layer, world):
    first, _ = await connect(world["alice"])
    seen = (await ready(first))["last_event_id"]
    await first.disconnect()

    await ingest(world["a"], "missed one")
    await ingest(world["a"], "missed two")
    await ingest(world["b"], "not yours")

    again, _ = await connect(world["alice"], query=f"last_event_id={seen}")
    replayed = await events_of(again, 4)
    assert [e["type"] for e in replayed] == [
        "conversation.created",
        "message.created",
        "conversation.updated",
        "message.created",
    ]
    assert [e["data"]["content"] for e in replayed if e["type"] == "message.created"] == [
        "missed one",
        "missed two",
    ]
    assert (await ready(again))["last_event_id"] == replayed[-1]["id"]
    # Asking again over the same socket sends nothing it already sent.
    await again.send_json_to({"type": "resume", "last_event_id": seen})
    assert (await receive(again))["type"] == "ready"
    # Live events still flow after the replay.
    await ingest(world["a"], "live now")
    live = await events_of(again, 2)
    assert live[1]["data"]["content"] == "live now"
    assert await again.receive_nothing(timeout=0.3)
    await again.disconnect()


async def test_resume_covers_a_lower_id_that_committed_late(layer, world):
    """Ids come from a sequence: 104 may commit after 105 was seen; resume re-sends it."""
    channel_id = world["a"].pk

    @database_sync_to_async
    def two_events():
        late = RealtimeEvent.objects.create(
            type="message.created", channel_id=channel_id, conversation_id=1, payload={"n": "late"}
        )
        seen = RealtimeEvent.objects.create(
            type="message.created", channel_id=channel_id, conversation_id=1, payload={"n": "seen"}
        )
        return late.pk, seen.pk

    late_id, seen_id = await two_events()
    communicator, _ = await connect(world["alice"], query=f"last_event_id={seen_id}")
    replayed = await events_of(communicator, 2)
    assert [e["id"] for e in replayed] == [late_id, seen_id]
    assert (await ready(communicator))["last_event_id"] == seen_id
    await communicator.disconnect()


async def test_resume_beyond_the_limit_asks_for_a_resync(layer, world, monkeypatch):
    monkeypatch.setattr(consumers, "RESUME_LIMIT", 3)
    first, _ = await connect(world["alice"])
    seen = (await ready(first))["last_event_id"]
    await first.disconnect()
    for n in range(3):
        await ingest(world["a"], f"message {n}")
    latest = await database_sync_to_async(lambda: RealtimeEvent.objects.latest("id").pk)()

    again, _ = await connect(world["alice"], query=f"last_event_id={seen}")
    assert await receive(again) == {"type": "resync", "last_event_id": latest}
    assert (await ready(again))["last_event_id"] == latest
    await again.disconnect()


async def test_typing_reaches_the_other_managers_only(layer, world):
    await ingest(world["a"], "hi")
    conversation_id = (await ingest(world["a"], "anyone?")).message.conversation_id
    alice, _ = await connect(world["alice"])
    carol, _ = await connect(world["carol"])
    bob, _ = await connect(world["bob"])
    for communicator in (alice, carol, bob):
        await ready(communicator)

    await alice.send_json_to({"type": "typing", "conversation_id": conversation_id})
    typing = await receive(carol)
    assert typing["type"] == "typing" and typing["id"] is None
    assert typing["data"]["conversation_id"] == conversation_id
    assert typing["data"]["user_id"] == world["alice"].pk
    assert await alice.receive_nothing(timeout=0.3)
    assert await bob.receive_nothing(timeout=0.3)

    # Bob may not see that conversation: his typing notice goes nowhere.
    await bob.send_json_to({"type": "typing", "conversation_id": conversation_id})
    assert await carol.receive_nothing(timeout=0.3)

    await carol.send_json_to({"type": "viewing", "conversation_id": conversation_id})
    viewing = await receive(alice)
    assert viewing["type"] == "viewing" and viewing["data"]["user_id"] == world["carol"].pk
    for communicator in (alice, carol, bob):
        await communicator.disconnect()


async def test_heartbeat_pings_and_closes_a_silent_socket(layer, world, monkeypatch):
    monkeypatch.setattr(consumers, "PING_INTERVAL", 0.05)
    monkeypatch.setattr(consumers, "IDLE_TIMEOUT", 0.3)
    communicator, _ = await connect(world["alice"])
    await ready(communicator)
    ping = await communicator.receive_json_from(timeout=5)
    assert ping["type"] == "ping" and isinstance(ping["seq"], int)
    while True:  # silent client: pings until the server gives up on it
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
    assert output["code"] == consumers.CLOSE_IDLE


async def test_a_client_that_answers_pongs_stays_connected(layer, world, monkeypatch):
    monkeypatch.setattr(consumers, "PING_INTERVAL", 0.05)
    monkeypatch.setattr(consumers, "IDLE_TIMEOUT", 0.3)
    communicator, _ = await connect(world["alice"])
    await ready(communicator)
    for _ in range(12):  # well past IDLE_TIMEOUT in total
        ping = await communicator.receive_json_from(timeout=5)
        assert ping["type"] == "ping"
        await communicator.send_json_to({"type": "pong", "seq": ping["seq"]})
    await ingest(world["a"], "still here")
    received = await events_of(communicator, 2)
    assert received[1]["data"]["content"] == "still here"
    await communicator.disconnect()


async def test_a_client_that_does_not_read_is_closed_not_buffered(layer, world, monkeypatch):
    """Relaying stops at once; the reason goes in band, then a ping; the 4429 close frame is
    sent once the client has read up to that ping (so it arrives instead of a TCP reset)."""
    monkeypatch.setitem(settings.SWITCHBOARD, "WEBSOCKET_SEND_BUFFER_BYTES", 4000)
    monkeypatch.setattr(consumers, "PING_EVERY_BYTES", 1000)
    communicator, _ = await connect(world["alice"])
    await ready(communicator)
    for n in range(12):  # ~600 bytes of events each, never a pong
        await ingest(world["a"], f"flood {n}")
    outputs = []
    while True:
        output = await communicator.receive_output(timeout=5)
        outputs.append(output)
        if '"closing"' in output.get("text", ""):
            break
    closing = json.loads(outputs[-1]["text"])
    assert closing == {
        "type": "closing",
        "code": consumers.CLOSE_TOO_SLOW,
        "reason": consumers.TOO_SLOW_REASON,
    }
    sent = sum(len(o.get("text", "")) for o in outputs)
    assert sent < 4000 + 2000
    ping = json.loads((await communicator.receive_output(timeout=5))["text"])
    assert ping["type"] == "ping"
    await ingest(world["a"], "not relayed any more")
    assert await communicator.receive_nothing(timeout=0.3)
    # An older ping's answer does not close it; the answer to the last one does.
    await communicator.send_json_to({"type": "pong", "seq": ping["seq"] - 1})
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.send_json_to({"type": "pong", "seq": ping["seq"]})
    output = await communicator.receive_output(timeout=5)
    assert output == {
        "type": "websocket.close",
        "code": consumers.CLOSE_TOO_SLOW,
        "reason": consumers.TOO_SLOW_REASON,
    }


@pytest.mark.redis
async def test_idle_socket_on_redis_still_receives_after_five_seconds(redis_layer, world):
    communicator, _ = await connect(world["alice"])
    await ready(communicator)
    await asyncio.sleep(6)  # past redis-py's default 5 s socket timeout
    await ingest(world["a"], "after a quiet spell")
    received = await events_of(communicator, 2)
    assert received[1]["data"]["content"] == "after a quiet spell"
    await communicator.disconnect()


async def test_one_layer_subscription_per_group_per_process(memory_layer, world):
    """Sockets of one process share one group membership: the layer sends each event once."""
    layer = get_channel_layer()
    group = f"inbox.channel.{world['a'].pk}"
    alice, _ = await connect(world["alice"])
    carol, _ = await connect(world["carol"])
    await ready(alice)
    await ready(carol)
    assert len(layer.groups[group]) == 1
    await ingest(world["a"], "to both")
    assert (await events_of(alice, 2))[1]["data"]["content"] == "to both"
    assert (await events_of(carol, 2))[1]["data"]["content"] == "to both"
    await alice.disconnect()
    assert len(layer.groups[group]) == 1  # carol is still there
    await carol.disconnect()
    await asyncio.sleep(0)  # the hub's pump leaves the group as it is cancelled
    assert not layer.groups.get(group)
