"""`mention.created` reaches the mentioned manager's sockets only, live and on resume; label
and activity events reach every viewer of the channel."""

import pytest
from channels.db import database_sync_to_async

from communications.services.send import send_message
from tests import factories

from .conftest import connect, ready, receive

pytestmark = pytest.mark.asyncio


@database_sync_to_async
def write_note(world, text: str, client_id: str):
    conversation = factories.ConversationFactory(channel=world["a"])
    conversation = (
        type(conversation).objects.select_related("contact", "channel").get(pk=conversation.pk)
    )
    return send_message(
        conversation=conversation,
        user=world["alice"],
        client_id=client_id,
        content=text,
        kind="note",
    ).message


async def test_only_the_mentioned_manager_hears_the_mention(layer, world):
    carol, _ = await connect(world["carol"])
    alice, _ = await connect(world["alice"])
    await ready(carol)
    await ready(alice)
    note = await write_note(world, "@carol please call them back", "n-1")

    heard = [await receive(carol) for _ in range(2)]
    assert [e["type"] for e in heard] == ["message.created", "mention.created"]
    assert heard[1]["data"]["message"]["id"] == note.pk
    # alice (same team, the author) sees the note, not a mention
    assert (await receive(alice))["type"] == "message.created"
    assert await alice.receive_nothing(timeout=0.5)
    await carol.disconnect()
    await alice.disconnect()


async def test_a_mention_missed_while_offline_is_replayed_on_resume(layer, world):
    first, _ = await connect(world["carol"])
    seen = (await ready(first))["last_event_id"]
    await first.disconnect()
    await write_note(world, "@carol while you were away", "n-2")

    again, _ = await connect(world["carol"], query=f"last_event_id={seen}")
    replayed = [await receive(again) for _ in range(2)]
    assert [e["type"] for e in replayed] == ["message.created", "mention.created"]
    assert (await receive(again))["type"] == "ready"
    await again.disconnect()
    bob, _ = await connect(world["bob"], query=f"last_event_id={seen}")
    assert (await receive(bob))["type"] == "ready"  # nothing of channel a, no mention
    await bob.disconnect()


@database_sync_to_async
def label_a_conversation(world):
    from django.db import transaction

    from communications.models import Conversation
    from communications.services.labels import change_conversation_labels
    from crm.models import Label

    conversation = factories.ConversationFactory(channel=world["a"])
    label = Label.objects.create(name="vip")
    with transaction.atomic():
        locked = (
            Conversation.objects.select_related("contact", "channel", "assignee")
            .select_for_update(of=("self",))
            .get(pk=conversation.pk)
        )
        change_conversation_labels(locked, add=[label], actor=world["alice"])
    return conversation


async def test_a_label_change_reaches_the_channels_viewers_with_its_activity_line(layer, world):
    carol, _ = await connect(world["carol"])
    bob, _ = await connect(world["bob"])
    await ready(carol)
    await ready(bob)
    conversation = await label_a_conversation(world)
    heard = [await receive(carol) for _ in range(2)]
    assert [e["type"] for e in heard] == ["conversation.updated", "activity.created"]
    assert heard[0]["data"]["id"] == conversation.pk
    assert [label["name"] for label in heard[0]["data"]["labels"]] == ["vip"]
    assert heard[1]["data"]["verb"] == "labels" and heard[1]["data"]["text"].endswith("label vip")
    assert await bob.receive_nothing(timeout=0.5)  # another team's channel
    await carol.disconnect()
    await bob.disconnect()
