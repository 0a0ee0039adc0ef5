"""The hub never goes deaf while its pages say "Live", on real Redis.

- A group quiet for longer than channels-redis's `group_expiry` is still heard (the refresher).
- A Redis restarted under a running process: the page is told `stalled` (not live), the pump
  restarts, re-joins, replays what was sent meanwhile, and only then says `ready` again.
- A Redis that lost its data without the connection noticing: the refresher sees the group
  forgotten, re-joins and replays.

The restarts use a redis-server of our own on a free port, never the shared one.
"""

import asyncio
import os
import uuid

import pytest
from channels.layers import channel_layers

from tests.own_redis import running_redis

from .conftest import connect, ingest, ready, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


def _layer_settings(settings, url: str, *, group_expiry: int) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": None}],
                "prefix": f"test-{uuid.uuid4().hex[:8]}",
                "group_expiry": group_expiry,
            },
        }
    }
    channel_layers.backends = {}


@pytest.fixture
def own_redis(tmp_path):
    yield from running_redis(tmp_path)


async def _events(communicator, count: int) -> list[dict]:
    return [await receive(communicator, timeout=10) for _ in range(count)]


async def test_a_group_quiet_longer_than_the_expiry_is_still_heard(settings, world):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    _layer_settings(settings, url, group_expiry=2)
    alice, _ = await connect(world["alice"])
    await ready(alice)
    # Quiet for longer than the expiry: the next group_send drops members older than that.
    await asyncio.sleep(3.5)
    await ingest(world["a"], "after a quiet spell")
    received = await _events(alice, 2)
    assert received[1]["data"]["content"] == "after a quiet spell"
    await alice.disconnect()
    channel_layers.backends = {}


async def test_a_restarted_redis_stalls_the_page_then_replays_and_goes_live(
    settings, world, own_redis
):
    _layer_settings(settings, own_redis.url, group_expiry=86400)
    alice, _ = await connect(world["alice"])
    await ready(alice)

    own_redis.kill()
    stalled = await receive(alice, timeout=15)
    assert stalled["type"] == "stalled", stalled
    # Sent while Redis is down: stored, its broadcast lost. It must still reach the page.
    await ingest(world["a"], "while redis was down")
    own_redis.start()  # empty: no group memberships survive

    replayed = await _events(alice, 2)
    assert [e["type"] for e in replayed] == ["conversation.created", "message.created"]
    assert replayed[1]["data"]["content"] == "while redis was down"
    assert (await receive(alice, timeout=10))["type"] == "ready"

    # Live again on the new Redis: the hub re-joined its groups there.
    await ingest(world["a"], "live after the restart")
    live = await _events(alice, 2)
    assert live[1]["data"]["content"] == "live after the restart"
    await alice.disconnect()
    channel_layers.backends = {}


async def test_a_redis_that_forgot_the_groups_is_noticed_and_replayed(settings, world, own_redis):
    _layer_settings(settings, own_redis.url, group_expiry=3)  # re-joins every second
    alice, _ = await connect(world["alice"])
    await ready(alice)

    own_redis.flush()  # the memberships are gone; the connection never noticed
    await ingest(world["a"], "sent to nobody")

    replayed = await _events(alice, 2)
    assert replayed[1]["data"]["content"] == "sent to nobody"
    assert (await receive(alice, timeout=10))["type"] == "ready"
    await alice.disconnect()
    channel_layers.backends = {}
