"""Broadcasting from sync code (workers, commands) to the Redis channel layer."""

import os

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers

from communications import events

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_layer(settings):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs the real Redis that REDIS_URL names (scripts/test provides one)")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": None}],
                "prefix": f"test-events-{os.getpid()}",
            },
        }
    }
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


def test_sync_broadcasts_reach_the_group_in_order_over_one_long_lived_loop(redis_layer):
    async def listen():
        name = await redis_layer.new_channel()
        await redis_layer.group_add("inbox.channel.4242", name)
        return name

    name = async_to_sync(listen)()
    events.broadcast_events([(4242, {"id": n}) for n in (1, 2)])
    loop = events._LayerLoop._loop
    events.broadcast_events([(4242, {"id": 3})])
    assert events._LayerLoop._loop is loop and loop.is_running()

    async def receive_two():
        return [
            [event["id"] for event in (await redis_layer.receive(name))["events"]] for _ in range(2)
        ]

    # A batch is one layer message per group: one group_send, not one per event.
    assert async_to_sync(receive_two)() == [[1, 2], [3]]
