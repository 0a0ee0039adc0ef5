"""Availability follows the inbox sockets: opening one makes a manager online, and the time the
last one closed is what beat's offline countdown starts from."""

import pytest
from channels.db import database_sync_to_async

from communications.models import ManagerAvailability
from communications.services.assignment import mark_absent_managers_offline

from .conftest import connect, ready

pytestmark = pytest.mark.asyncio


@database_sync_to_async
def availability(user) -> ManagerAvailability | None:
    return ManagerAvailability.objects.filter(user=user).first()


@database_sync_to_async
def set_row(user, **values) -> None:
    ManagerAvailability.objects.filter(user=user).update(**values)


async def test_a_socket_makes_a_manager_online_and_its_close_starts_the_countdown(
    memory_layer, world, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "AVAILABILITY_OFFLINE_AFTER_SECONDS": 60}
    assert await availability(world["alice"]) is None
    alice, connected = await connect(world["alice"])
    assert connected
    await ready(alice)  # availability is written before `ready`
    row = await availability(world["alice"])
    assert row.status == "online" and row.last_socket_at is not None
    opened_at = row.last_socket_at

    await alice.disconnect()
    closed = await availability(world["alice"])
    assert closed.status == "online" and closed.last_socket_at > opened_at
    # Not yet past the countdown: beat leaves her online.
    assert await database_sync_to_async(mark_absent_managers_offline)() == []


async def test_an_automatic_offline_ends_when_a_socket_opens_a_chosen_one_does_not(
    memory_layer, world
):
    alice, _ = await connect(world["alice"])
    await ready(alice)
    await alice.disconnect()
    await set_row(world["alice"], status="offline", set_automatically=True)
    alice, _ = await connect(world["alice"])
    await ready(alice)
    assert (await availability(world["alice"])).status == "online"
    await alice.disconnect()

    await set_row(world["alice"], status="offline", set_automatically=False)
    alice, _ = await connect(world["alice"])
    await ready(alice)
    assert (await availability(world["alice"])).status == "offline"
    await alice.disconnect()
