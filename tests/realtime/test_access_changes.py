"""Open inbox sockets follow access changes made in the admin, without a reconnect."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from communications import events
from communications.models import Channel

from .conftest import connect, ingest, ready, receive

pytestmark = pytest.mark.asyncio


@database_sync_to_async
def admin_post(user, path: str, data: dict) -> int:
    client = Client()
    client.force_login(user)
    return client.post(path, data).status_code


def team_of(channel):
    return channel.teams.get()


async def expect_resync(communicator) -> None:
    message = await receive(communicator)
    assert message["type"] == "resync", message


async def test_a_manager_added_to_a_team_starts_receiving_its_channel(layer, world):
    bob, _ = await connect(world["bob"])
    await ready(bob)
    team_a = await database_sync_to_async(team_of)(world["a"])
    members = [world["alice"].pk, world["carol"].pk, world["bob"].pk]
    status = await admin_post(
        world["admin"],
        f"/admin/crm/team/{team_a.pk}/change/",
        {"name": team_a.name, "members": members},
    )
    assert status == 302
    await expect_resync(bob)  # the page reloads its list: the new conversations show
    await ingest(world["a"], "bob can see this now")
    received = [await receive(bob), await receive(bob)]
    assert received[1]["data"]["content"] == "bob can see this now"
    await bob.disconnect()


async def test_a_manager_removed_from_a_team_stops_receiving_at_once(layer, world):
    alice, _ = await connect(world["alice"])
    await ready(alice)
    team_a = await database_sync_to_async(team_of)(world["a"])
    status = await admin_post(
        world["admin"],
        f"/admin/crm/team/{team_a.pk}/change/",
        {"name": team_a.name, "members": [world["carol"].pk]},
    )
    assert status == 302
    await expect_resync(alice)
    await ingest(world["a"], "not for alice any more")
    assert await alice.receive_nothing(timeout=0.5)
    await alice.disconnect()


async def test_a_channel_created_in_the_admin_reaches_an_open_superuser_socket(layer, world):
    admin, _ = await connect(world["admin"])
    await ready(admin)
    status = await admin_post(
        world["admin"],
        "/admin/communications/channel/add/",
        {"kind": Channel.Kind.API, "name": "New shop", "config": "{}", "is_active": "on"},
    )
    assert status == 302
    await expect_resync(admin)
    channel = await database_sync_to_async(Channel.objects.get)(name="New shop")
    await ingest(channel, "first words on the new channel")
    received = [await receive(admin), await receive(admin)]
    assert received[1]["data"]["content"] == "first words on the new channel"
    await admin.disconnect()


async def test_a_deactivated_user_is_signed_out_of_the_socket(layer, world):
    alice, _ = await connect(world["alice"])
    await ready(alice)

    @database_sync_to_async
    def deactivate():
        with transaction.atomic():
            get_user_model().objects.filter(pk=world["alice"].pk).update(is_active=False)
            events.access_changed()

    await deactivate()
    closed = await alice.receive_output(timeout=5)
    while closed.get("type") == "websocket.send":  # a ping may come first
        closed = await alice.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_change_that_changes_nothing_for_a_socket_asks_for_no_reload(layer, world):
    bob, _ = await connect(world["bob"])
    await ready(bob)
    await database_sync_to_async(events.access_changed)()  # no transaction: sent at once
    assert await bob.receive_nothing(timeout=0.5)
    await ingest(world["b"], "still bob's")
    assert (await receive(bob))["type"] == "conversation.created"
    await bob.disconnect()
