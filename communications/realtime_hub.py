"""One channel-layer subscription per group per process, fanned out to local sockets.

With one layer channel per browser, every event costs the layer a message per socket (with
Redis: a round trip and a decode each), which caps a server at a few thousand deliveries a
second. Here each process joins a group once, receives each event once, encodes it to JSON
once, and hands the text to every local consumer of that group.
"""

import asyncio
import json
import logging

logger = logging.getLogger(__name__)

# channels-redis forgets group members after a day; the hub re-joins well before that.
GROUP_REFRESH_SECONDS = 3600


class Hub:
    def __init__(self, layer):
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.subscribers: dict[str, set] = {}
        self.pumps: dict[str, asyncio.Task] = {}
        self.lock = asyncio.Lock()

    async def join(self, group: str, consumer) -> None:
        async with self.lock:
            self.subscribers.setdefault(group, set()).add(consumer)
            if group not in self.pumps:
                # the default prefix: channels-redis reads all local channels with one loop
                name = await self.layer.new_channel()
                await self.layer.group_add(group, name)
                self.pumps[group] = asyncio.ensure_future(self.pump(group, name))

    async def leave(self, group: str, consumer) -> None:
        async with self.lock:
            members = self.subscribers.get(group)
            if members is None:
                return
            members.discard(consumer)
            if members:
                return
            del self.subscribers[group]
            pump = self.pumps.pop(group, None)
        if pump is not None:
            pump.cancel()

    async def fan_out(self, group: str, event: dict) -> None:
        text = json.dumps(event, separators=(",", ":"))
        for consumer in list(self.subscribers.get(group, ())):
            try:
                await consumer.deliver(event, text)
            except Exception:  # one broken socket must not stop the others
                logger.exception("inbox delivery to one socket failed")

    async def pump(self, group: str, name: str) -> None:
        refreshed = self.loop.time()
        try:
            while True:
                message = await self.layer.receive(name)
                if self.loop.time() - refreshed > GROUP_REFRESH_SECONDS:
                    await self.layer.group_add(group, name)
                    refreshed = self.loop.time()
                if message.get("type") != "inbox.events":
                    continue
                for event in message["events"]:
                    await self.fan_out(group, event)
        except asyncio.CancelledError:
            try:
                await self.layer.group_discard(group, name)
            except Exception:
                logger.debug("leaving %s after the last socket left failed", group)
            raise


def hub_for(layer) -> Hub:
    """The hub of this process's event loop and channel layer."""
    hub = getattr(layer, "_inbox_hub", None)
    if hub is None or hub.loop is not asyncio.get_running_loop():
        hub = Hub(layer)
        layer._inbox_hub = hub
    return hub
