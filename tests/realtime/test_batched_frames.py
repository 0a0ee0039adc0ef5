"""`?batch=1`: the live events of one committed batch come as one frame (a JSON array).

The inbox page asks for it (static/inbox/realtime.js); a socket that does not gets the
one-event frames of the public contract. Same events, same order, same dedup either way.
"""

import pytest
from channels.db import database_sync_to_async

from communications.services.ingest import InboundMessage, InboundSender, ingest_messages

from .conftest import connect, ingest, ready

pytestmark = pytest.mark.asyncio


async def frame(communicator, timeout: float = 5):
    """The next frame that is not a ping, decoded (an object or a list)."""
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if not (isinstance(message, dict) and message.get("type") == "ping"):
            return message


@database_sync_to_async
def ingest_two(channel, first: str, second: str):
    sender = InboundSender(external_id="cust-batch", name="Customer")
    return ingest_messages(
        channel,
        [
            InboundMessage(sender=sender, content=first),
            InboundMessage(sender=sender, content=second),
        ],
    )


async def test_a_new_message_is_one_frame_with_batch_and_one_frame_per_event_without(layer, world):
    batched, _ = await connect(world["alice"], query="batch=1")
    plain, _ = await connect(world["carol"])
    await ready(batched)
    await ready(plain)

    result = await ingest(world["a"], "hello in one frame")

    events = await frame(batched)
    assert isinstance(events, list)
    assert [e["type"] for e in events] == ["conversation.created", "message.created"]
    assert events[1]["data"]["id"] == result.message.pk
    assert events[0]["id"] < events[1]["id"]
    assert await batched.receive_nothing(timeout=0.3)

    one, two = await frame(plain), await frame(plain)
    assert [one["type"], two["type"]] == ["conversation.created", "message.created"]
    assert [one["id"], two["id"]] == [e["id"] for e in events]
    assert await plain.receive_nothing(timeout=0.3)

    # A message to the existing chat: its message.created and conversation.updated together.
    await ingest(world["a"], "second one")
    events = await frame(batched)
    assert sorted(e["type"] for e in events) == ["conversation.updated", "message.created"]
    await batched.disconnect()
    await plain.disconnect()


async def test_an_ingest_batch_of_two_messages_is_one_frame(layer, world):
    batched, _ = await connect(world["alice"], query="batch=1")
    await ready(batched)
    await ingest_two(world["a"], "first", "second")
    events = await frame(batched)
    contents = [e["data"]["content"] for e in events if e["type"] == "message.created"]
    assert contents == ["first", "second"]
    assert len({e["id"] for e in events}) == len(events)
    assert await batched.receive_nothing(timeout=0.3)
    await batched.disconnect()


async def test_replay_is_one_object_per_frame_and_live_events_are_not_sent_again(layer, world):
    first, _ = await connect(world["alice"], query="batch=1")
    seen = (await ready(first))["last_event_id"]
    await first.disconnect()
    await ingest(world["a"], "missed")

    again, _ = await connect(world["alice"], query=f"batch=1&last_event_id={seen}")
    replayed = [await frame(again), await frame(again)]
    assert all(isinstance(e, dict) for e in replayed)
    assert [e["type"] for e in replayed] == ["conversation.created", "message.created"]
    assert (await frame(again))["type"] == "ready"

    await ingest(world["a"], "live")
    live = await frame(again)
    assert [e["data"]["content"] for e in live if e["type"] == "message.created"] == ["live"]
    assert not {e["id"] for e in live} & {e["id"] for e in replayed}
    await again.disconnect()


async def test_batched_presence_is_not_echoed_to_its_author(layer, world):
    alice, _ = await connect(world["alice"], query="batch=1")
    carol, _ = await connect(world["carol"], query="batch=1")
    await ready(alice)
    await ready(carol)
    result = await ingest(world["a"], "someone typing?")
    await frame(alice)
    await frame(carol)

    await alice.send_json_to({"type": "typing", "conversation_id": result.message.conversation_id})
    typing = await frame(carol)
    assert isinstance(typing, dict)  # a batch of one is the object itself
    assert typing["type"] == "typing"
    assert typing["data"]["user_id"] == world["alice"].pk
    assert await alice.receive_nothing(timeout=0.3)
    await alice.disconnect()
    await carol.disconnect()
