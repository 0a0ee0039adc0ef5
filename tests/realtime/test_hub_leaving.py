"""A socket leaving its group never costs another group an event (real Redis).

channels-redis reads all of a process's layer channels through one receive loop: whichever
pump holds its receive lock pops the next message for *any* local channel. A pump cancelled
while its BZPOPMIN answer is on the wire loses that message — another group's event
(channels-redis receives are not cancellation-safe there). The hub therefore never cancels a
pump: the last socket of a group leaving only discards the group's membership.
"""

import asyncio
import os
import uuid

import pytest
from channels_redis.core import RedisChannelLayer

from communications.realtime_hub import Hub

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


class Socket:
    def __init__(self):
        self.events = []

    async def deliver(self, events, texts):
        self.events.extend(events)

    async def group_deaf(self, group):
        pass

    async def group_heard(self, group, missed=False):
        pass


@pytest.fixture
async def hub():
    """A hub on the real Redis of REDIS_URL, with a layer prefix of its own."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    layer = RedisChannelLayer(
        hosts=[{"address": url, "socket_timeout": None}], prefix=f"t-{uuid.uuid4().hex[:8]}"
    )
    hub = Hub(layer)
    yield hub
    await hub.close()
    await layer.flush()


async def _until(predicate, seconds=10):
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)


async def test_the_last_socket_leaving_a_group_loses_no_other_groups_event(hub):
    layer = hub.layer
    staying, rounds = Socket(), 200
    await hub.join("team-stays", staying)
    for n in range(rounds):
        leaving = Socket()
        await hub.join("team-leaves", leaving)
        await asyncio.sleep(0.005)  # both pumps wait: the first holds the receive lock
        # The first event makes the lock pass to the other group's pump (asyncio.Lock is
        # fair), which now reads the layer for both groups...
        await layer.group_send("team-stays", {"type": "inbox.events", "events": [{"n": 2 * n}]})
        await _until(lambda n=n: any(e["n"] == 2 * n for e in staying.events), seconds=1)
        # ...so the second is on its way to the pump of the group whose last socket leaves,
        # at a moment that varies from round to round across the answer's time on the wire.
        second = asyncio.ensure_future(
            layer.group_send("team-stays", {"type": "inbox.events", "events": [{"n": 2 * n + 1}]})
        )
        await asyncio.sleep((n % 20) / 10_000)
        await hub.leave("team-leaves", leaving)
        await second
    await _until(lambda: len(staying.events) >= 2 * rounds)
    missing = sorted(set(range(2 * rounds)) - {e["n"] for e in staying.events})
    assert missing == []
    assert [e["n"] for e in staying.events] == list(range(2 * rounds))


async def test_a_group_joined_again_after_its_last_socket_left_is_heard(hub):
    layer = hub.layer
    first, again = Socket(), Socket()
    await hub.join("team", first)
    await hub.leave("team", first)
    await layer.group_send("team", {"type": "inbox.events", "events": [{"n": "to nobody"}]})
    await hub.join("team", again)
    assert hub.hears("team")
    await layer.group_send("team", {"type": "inbox.events", "events": [{"n": "heard"}]})
    await _until(lambda: again.events)
    assert again.events == [{"n": "heard"}]
    assert first.events == []
