"""One channel-layer subscription per group per process, fanned out to local sockets.

With one layer channel per browser, every event costs the layer a message per socket (with
Redis: a round trip and a decode each), which caps a server at a few thousand deliveries a
second. Here each process joins a group once, receives each event once, encodes it to JSON
once, and hands the texts of a layer message (a committed batch: a message's `message.created`
and `conversation.updated` at least) to every local consumer of that group together, so a
socket that asked for batches sends them as one frame (docs/REALTIME.md).

A process must never go deaf while its pages say "Live":
- channels-redis drops a group member older than `group_expiry` at the next `group_send`, so a
  refresher re-joins every group on a timer well below it, whether messages arrive or not; a
  membership the layer had forgotten (a Redis restarted without its data) is noticed there;
- a pump whose receive fails (Redis gone) is restarted with backoff and re-joins its group.
While a group cannot be heard its sockets are told (`group_deaf`); once it is heard again they
are told too (`group_heard`), with `missed=True`, and replay what they missed from the database.

A pump is never cancelled. channels-redis reads all of a process's layer channels through one
receive loop: whichever pump holds its receive lock pops the next message for *any* group, and
a pump cancelled while that BZPOPMIN answer is on the wire loses it — another group's event
(measured: a probe that let one group's last socket leave after every other event lost ~3 %
of the other group's events; tests/realtime/test_hub_leaving.py). So when the last socket of a
group leaves, only the group's membership is discarded; its pump stays, idle, and serves the
group again when a socket re-joins. A process keeps at most one pump per group it ever served
(groups are per user and per channel: a bounded set).
"""

import asyncio
import json
import logging
import random
import time

logger = logging.getLogger(__name__)

# The longest wait between re-joins; layers with a short group expiry get a third of it.
MAX_REFRESH_SECONDS = 30.0
# Restart backoff of a failed pump: doubling from the first to the last, jittered.
RESTART_FIRST_SECONDS = 0.2
RESTART_MAX_SECONDS = 10.0


def refresh_interval(layer) -> float:
    expiry = getattr(layer, "group_expiry", None) or 86400
    return min(MAX_REFRESH_SECONDS, expiry / 3)


def restart_delay(failures: int) -> float:
    delay = min(RESTART_MAX_SECONDS, RESTART_FIRST_SECONDS * 2 ** max(failures - 1, 0))
    return delay * random.uniform(0.5, 1.0)


class Hub:
    def __init__(self, layer):
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.subscribers: dict[str, set] = {}
        self.pumps: dict[str, asyncio.Task] = {}
        self.names: dict[str, str] = {}  # group -> the layer channel this process reads it on
        self.deaf: set[str] = set()  # groups whose pump is failing right now
        self.lock = asyncio.Lock()
        self.refresher: asyncio.Task | None = None

    async def join(self, group: str, consumer) -> None:
        """Subscribe a socket; raises (subscribing nothing) when the layer cannot be reached."""
        async with self.lock:
            if group not in self.subscribers:
                name = self.names.get(group)
                if name is None:
                    # the default prefix: channels-redis reads all local channels with one loop
                    name = await self.layer.new_channel()
                await self.layer.group_add(group, name)
                if group not in self.pumps:
                    self.names[group] = name
                    self.pumps[group] = asyncio.ensure_future(self.pump(group, name))
                self.subscribers[group] = set()
            self.subscribers[group].add(consumer)
            if self.refresher is None or self.refresher.done():
                self.refresher = asyncio.ensure_future(self.refresh_loop())

    async def leave(self, group: str, consumer) -> None:
        """Unsubscribe a socket; the last one out discards the group's membership (the pump
        stays: see the module's docstring)."""
        async with self.lock:
            members = self.subscribers.get(group)
            if members is None:
                return
            members.discard(consumer)
            if members:
                return
            del self.subscribers[group]
            self.deaf.discard(group)
            try:
                await self.layer.group_discard(group, self.names[group])
            except Exception:
                # Redis gone: the membership expires with the group (group_expiry).
                logger.debug("leaving %s after the last socket left failed", group)

    async def close(self) -> None:
        """Stop every pump (the event loop is ending: tests, process shutdown)."""
        tasks = [*self.pumps.values(), *([self.refresher] if self.refresher else [])]
        self.pumps.clear()
        self.subscribers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def hears(self, group: str) -> bool:
        return group in self.subscribers and group not in self.deaf

    async def fan_out(self, group: str, events: list[dict]) -> None:
        """One layer message's events (a committed batch) to every local socket of the group,
        each event encoded once; a socket sends them as one frame or one frame each."""
        texts = [json.dumps(event, separators=(",", ":")) for event in events]
        for consumer in list(self.subscribers.get(group, ())):
            try:
                await consumer.deliver(events, texts)
            except Exception:  # one broken socket must not stop the others
                logger.exception("inbox delivery to one socket failed")

    async def tell(self, group: str, method: str, **kwargs) -> None:
        for consumer in list(self.subscribers.get(group, ())):
            try:
                await getattr(consumer, method)(group, **kwargs)
            except Exception:
                logger.exception("telling one socket about group %s failed", group)

    async def pump(self, group: str, name: str) -> None:
        failures = 0
        while True:
            try:
                if failures:
                    # The layer may have lost the membership with its connection.
                    if group in self.subscribers:
                        await self.layer.group_add(group, name)
                    failures = 0
                    if group in self.deaf:
                        self.deaf.discard(group)
                        logger.warning("realtime group %s is heard again", group)
                        await self.tell(group, "group_heard", missed=True)
                message = await self.layer.receive(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if group in self.subscribers and group not in self.deaf:
                    self.deaf.add(group)
                    logger.exception("realtime group %s cannot be heard; restarting", group)
                    await self.tell(group, "group_deaf")
                await asyncio.sleep(restart_delay(failures))
                continue
            if message.get("type") != "inbox.events":
                continue
            await self.fan_out(group, message["events"])

    async def refresh_loop(self) -> None:
        """Re-join every group below the layer's expiry, while any socket is subscribed."""
        interval = refresh_interval(self.layer)
        while self.subscribers:
            await asyncio.sleep(interval)
            for group, name in list(self.names.items()):
                if group not in self.subscribers or group in self.deaf:
                    continue  # its pump re-joins when it recovers
                try:
                    forgotten = await self.rejoin(group, name)
                except Exception:
                    logger.warning("re-joining realtime group %s failed", group, exc_info=True)
                    continue
                if forgotten and group in self.subscribers:
                    # Events sent while we were not a member never reached us: replay them.
                    logger.warning("the channel layer had forgotten group %s; re-joined", group)
                    await self.tell(group, "group_heard", missed=True)

    async def rejoin(self, group: str, name: str) -> bool:
        """Refresh the membership; True when the layer no longer had it (we were deaf)."""
        rejoin_redis = getattr(self.layer, "_group_key", None)
        if rejoin_redis is None:  # the in-memory layer: nothing to lose but the expiry
            await self.layer.group_add(group, name)
            return False
        # channels-redis's own group_add, but reading ZADD's answer: 1 = newly added.
        connection = self.layer.connection(self.layer.consistent_hash(group))
        key = self.layer._group_key(group)
        added = await connection.zadd(key, {name: time.time()})
        await connection.expire(key, self.layer.group_expiry)
        return bool(added)


def hub_for(layer) -> Hub:
    """The hub of this process's event loop and channel layer."""
    hub = getattr(layer, "_inbox_hub", None)
    if hub is None or hub.loop is not asyncio.get_running_loop():
        hub = Hub(layer)
        layer._inbox_hub = hub
    return hub
