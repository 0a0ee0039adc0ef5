"""Merge events over the websocket: a merge across two channels tells each channel's viewers
of their own row (the merged-away one archived, with `merged_into_id`) and its activity line;
the customer's next message on the merged chat reaches the survivor's viewers only; the undo
is heard by both."""

import pytest
from channels.db import database_sync_to_async

from communications.services.merge import merge_conversations, unmerge_conversation
from tests import factories

from .conftest import connect, ingest, ready, receive

pytestmark = pytest.mark.asyncio


@database_sync_to_async
def two_chats(world):
    survivor = factories.ConversationFactory(channel=world["a"], external_id="cust-a")
    other = factories.ConversationFactory(channel=world["b"], external_id="cust-b")
    return survivor, other


async def everything(communicator) -> list[dict]:
    """Every event until the socket has been quiet for a moment."""
    events = [await receive(communicator)]
    while not await communicator.receive_nothing(timeout=0.7):
        event = await communicator.receive_json_from()
        if event.get("type") != "ping":
            events.append(event)
    return events


async def test_a_cross_channel_merge_and_its_undo_reach_each_channels_viewers(layer, world):
    survivor, other = await two_chats(world)
    carol, _ = await connect(world["carol"])  # sees channel a
    bob, _ = await connect(world["bob"])  # sees channel b
    await ready(carol)
    await ready(bob)

    await database_sync_to_async(merge_conversations)(
        survivor.pk, other.pk, actor=world["admin"], merge_contacts=True
    )
    heard_by_carol = await everything(carol)
    heard_by_bob = await everything(bob)
    # carol (channel a): the survivor's row and the line saying what came in
    survivor_rows = [e for e in heard_by_carol if e["type"] == "conversation.updated"]
    assert {e["data"]["id"] for e in survivor_rows} == {survivor.pk}
    carol_lines = [e["data"]["text"] for e in heard_by_carol if e["type"] == "activity.created"]
    assert any(f"merged #{other.pk}" in text and "into this" in text for text in carol_lines)
    assert {e["type"] for e in heard_by_carol} >= {"contact.updated"}
    # bob (channel b): his row, archived and pointing at the survivor, and its line
    merged_rows = [e for e in heard_by_bob if e["type"] == "conversation.updated"]
    assert {e["data"]["id"] for e in merged_rows} == {other.pk}
    assert merged_rows[-1]["data"]["merged_into_id"] == survivor.pk
    assert merged_rows[-1]["data"]["is_archived"] is True
    assert merged_rows[-1]["counts"]["all"] == -1
    bob_lines = [e["data"]["text"] for e in heard_by_bob if e["type"] == "activity.created"]
    assert any(f"merged this into #{survivor.pk}" in text for text in bob_lines)

    # the customer writes again on channel b: the message is the survivor's, on channel a
    await ingest(world["b"], "one more thing", sender="cust-b")
    heard = [await receive(carol) for _ in range(2)]
    assert {e["type"] for e in heard} == {"conversation.updated", "message.created"}
    assert [e["data"]["conversation_id"] for e in heard if e["type"] == "message.created"] == [
        survivor.pk
    ]
    assert await bob.receive_nothing(timeout=0.5)

    await database_sync_to_async(unmerge_conversation)(other.pk, actor=world["admin"])
    back = [await receive(bob) for _ in range(2)]
    row = [e for e in back if e["type"] == "conversation.updated"][0]
    assert row["data"]["merged_into_id"] is None and row["data"]["is_archived"] is False
    assert any(e["type"] == "activity.created" for e in back)
    await carol.disconnect()
    await bob.disconnect()
