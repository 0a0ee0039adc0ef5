"""The inbox websocket `/ws/inbox/`: authenticate, join the user's channel groups, relay.

Protocol (docs/REALTIME.md): the server sends `{"id", "type", "data"}` events, `ping`,
`ready`, `resync`; the client sends `pong`, `resume`, `typing`, `viewing`. With `?batch=1`
(the inbox page) the live events of one committed batch come as one frame, a JSON array.

- Resume: `?last_event_id=N` (or a `resume` message) first replays the stored events after N on
  the user's channels, then live ones; ids already sent on this socket are never sent twice.
  Ids come from a sequence, so a lower id can commit after a higher one: the replay also covers
  events created shortly before N (the client ignores ids it has applied).
- Heartbeat: a ping every PING_INTERVAL; a socket silent for IDLE_TIMEOUT is closed.
- Bounded send buffer: every ping carries a sequence number and the pong echoes it; when more
  than WEBSOCKET_SEND_BUFFER_BYTES were sent past the last ping the client answered, the client
  is not reading: relaying stops at once, so one slow browser cannot grow the server's memory,
  and the socket is closed with 4429. The close frame would queue behind everything the client
  has not read, and daphne drops the connection one second after sending it: the client would
  see a bare TCP close. So the server first sends `closing` (the reason, in band) and a ping,
  and sends the close frame once the client has read up to that ping (it answers it), or after
  SLOW_CLOSE_GRACE when it never does.
- Sending never waits for the client: every frame goes through the socket's `Outbox` (its own
  writer task), so a socket whose server applies flow control (uvicorn) and whose client stopped
  reading holds up only itself, never the hub's fan-out to the other sockets.
- Hearing: while the hub cannot hear one of the socket's groups (Redis gone) the page is sent
  `stalled` instead of events, and is not `ready` (not "Live") until every group is heard
  again and what was missed meanwhile has been replayed from the database.
"""

import asyncio
import json
import logging
import time
from collections import OrderedDict
from datetime import timedelta
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, Q
from django.http import Http404

from . import events
from .access import access_conversation_by_id, visible_channel_ids
from .models import Channel, RealtimeEvent
from .realtime_hub import hub_for
from .services.assignment import socket_seen
from .socket_outbox import Outbox

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_IDLE = 4408
CLOSE_TOO_SLOW = 4429
TOO_SLOW_REASON = "this tab fell behind the updates sent to it"
# The process cannot reach its channel layer: the page reconnects (perhaps to another process).
CLOSE_UNAVAILABLE = 4503

PING_INTERVAL = 20.0
# How often an open socket refreshes its manager's `last_socket_at` (availability): well
# inside AVAILABILITY_OFFLINE_AFTER_SECONDS, so a manager with a page open never goes offline.
PRESENCE_REFRESH = 60.0
IDLE_TIMEOUT = 60.0
# A ping goes out early once this much was sent since the last one, so a fast stream of events
# is acknowledged often enough to stay under WEBSOCKET_SEND_BUFFER_BYTES (settings).
PING_EVERY_BYTES = 256 * 1024
RESUME_LIMIT = 1000
# How long a client found too slow has to read what it was sent before it is cut off anyway.
SLOW_CLOSE_GRACE = 30.0
# How far before the last event seen a resume looks again, for ids that committed late.
RESUME_LOOKBACK = timedelta(seconds=10)
REMEMBERED_IDS = 4096
EPHEMERAL_MIN_INTERVAL = 1.0
# A manager's typing goes on to the customer (providers with `send_typing`) at most this often.
CHANNEL_TYPING_MIN_INTERVAL = 3.0


class InboxConsumer(AsyncWebsocketConsumer):
    # No layer channel of its own: every event comes through the process's hub. A per-socket
    # channel would be one more Redis receive per socket, and its failure (Redis restarted)
    # would kill the socket instead of letting the hub recover and replay.
    channel_layer_alias = None

    async def connect(self):
        self.outbox = Outbox(self.base_send)
        self.base_send = self.outbox.put  # accept, every frame and the close, in order
        self.user = self.scope.get("user")
        self.groups_joined: list[str] = []
        self.sent_ids: OrderedDict[int, None] = OrderedDict()
        self.heartbeat = None
        # Live events that arrive while the replay is read wait here (bounded), then follow it.
        self.held: list[dict] | None = []
        self.too_slow_ping: int | None = None  # the ping whose answer lets the 4429 frame out
        self.too_slow_since = 0.0
        if self.user is None or not self.user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.last_received = time.monotonic()
        self.bytes_sent = 0
        self.send_buffer_limit = settings.SWITCHBOARD["WEBSOCKET_SEND_BUFFER_BYTES"]
        self.ping_seq = 0
        self.pings: dict[int, int] = {}  # ping seq -> bytes_sent when it went out
        self.acked_bytes = 0
        self.bytes_at_last_ping = 0
        self.last_ephemeral: dict[str, float] = {}
        self.last_channel_typing: dict[int, float] = {}
        self.background: set[asyncio.Task] = set()
        self.disconnected = False
        self.access_lock = asyncio.Lock()
        self.resume_lock = asyncio.Lock()
        self.last_event_id = 0  # the highest id this socket has sent or replayed up to
        self.deaf_groups: set[str] = set()
        # One frame per committed batch (a JSON array of its events) instead of one per event:
        # what the inbox page asks for; integrators get the one-event frames of the contract.
        self.batched = _query_param(self.scope, "batch") == "1"
        self.channel_ids = await database_sync_to_async(_channel_ids_for)(self.user)
        self.hub = hub_for(get_channel_layer())
        await self.accept()
        try:
            for group in [
                events.ACCESS_GROUP,
                events.user_group(self.user.pk),
                *map(events.channel_group, self.channel_ids),
            ]:
                await self.join(group)
        except Exception:
            logger.warning("inbox socket of user %s cannot join its groups", self.user.pk)
            await self.leave_groups()
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        # Before `ready`: the page reads its manager's availability once it is live.
        await self.seen(opened=True)
        last_event_id = _int_or_none(_query_param(self.scope, "last_event_id"))
        await self.resume(last_event_id)
        self.heartbeat = asyncio.ensure_future(self.heartbeat_loop())

    async def seen(self, *, opened: bool = False) -> None:
        """Availability: this manager has an inbox open (services/assignment.py)."""
        self.last_seen_written = time.monotonic()
        try:
            await database_sync_to_async(socket_seen)(self.user.pk, opened=opened)
        except Exception:  # presence is best effort; the socket works without it
            logger.warning("availability of user %s not updated", self.user.pk, exc_info=True)

    async def disconnect(self, code):
        self.disconnected = True
        self.outbox.stop()
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        await self.leave_groups()
        if getattr(self, "last_seen_written", None) is not None:
            await self.seen()  # the offline countdown starts now

    async def join(self, group: str) -> None:
        await self.hub.join(group, self)
        self.groups_joined.append(group)
        if not self.hub.hears(group):
            self.deaf_groups.add(group)

    async def leave_groups(self) -> None:
        groups, self.groups_joined = self.groups_joined, []
        self.deaf_groups.clear()
        for group in groups:
            await self.hub.leave(group, self)

    # --- the hub's hearing ----------------------------------------------------------------

    async def group_deaf(self, group: str) -> None:
        """The hub cannot hear `group`: this page is not live until it can again."""
        if group not in self.groups_joined or self.disconnected:
            return
        was_live = not self.deaf_groups
        self.deaf_groups.add(group)
        if was_live:
            await self.send_json({"type": "stalled", "last_event_id": self.last_event_id})

    async def group_heard(self, group: str, *, missed: bool) -> None:
        """`group` is heard again; events sent meanwhile never arrived: replay, then `ready`."""
        if group not in self.groups_joined or self.disconnected:
            return
        self.deaf_groups.discard(group)
        if missed and not self.deaf_groups:
            if self.held is None:
                self.held = []  # live events from now on wait behind the replay
            self.in_background(self.resume(self.last_event_id))

    # --- client → server ------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        self.last_received = time.monotonic()
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if self.too_slow_ping is not None:
            if kind == "pong" and isinstance(message.get("seq"), int):
                if message["seq"] >= self.too_slow_ping:  # it has read up to the close
                    await self.close(code=CLOSE_TOO_SLOW, reason=TOO_SLOW_REASON)
            return
        if kind == "pong":
            self.on_pong(message.get("seq"))
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "resume":
            await self.resume(_int_or_none(message.get("last_event_id")))
        elif kind in (events.TYPING, "viewing"):
            await self.relay_presence(kind, message.get("conversation_id"))

    def on_pong(self, seq) -> None:
        sent_then = self.pings.pop(seq, None) if isinstance(seq, int) else None
        if sent_then is not None:
            self.acked_bytes = max(self.acked_bytes, sent_then)
            for older in [s for s in self.pings if s < seq]:
                del self.pings[older]

    async def relay_presence(self, kind: str, conversation_id) -> None:
        key = f"{kind}:{conversation_id}"
        now = time.monotonic()
        if now - self.last_ephemeral.get(key, 0.0) < EPHEMERAL_MIN_INTERVAL:
            return
        if len(self.last_ephemeral) > 256:  # bounded, whatever ids a client sends
            self.last_ephemeral.clear()
        self.last_ephemeral[key] = now
        conversation = await database_sync_to_async(_broadcast_presence)(
            self.user, kind, conversation_id
        )
        if kind == events.TYPING and conversation is not None:
            self.typing_to_channel(conversation, now)

    def typing_to_channel(self, conversation, now: float) -> None:
        """Tell the customer (where the channel can) in the background: never awaited here,
        so a slow platform cannot hold the socket; off the shared sync thread too."""
        if now - self.last_channel_typing.get(conversation.pk, 0.0) < CHANNEL_TYPING_MIN_INTERVAL:
            return
        if len(self.last_channel_typing) > 256:
            self.last_channel_typing.clear()
        self.last_channel_typing[conversation.pk] = now
        self.in_background(
            database_sync_to_async(_send_typing_to_channel, thread_sensitive=False)(
                conversation, self.user
            )
        )

    def in_background(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def refresh_access(self) -> None:
        """Teams, members or channels changed: re-read what the user may see. Channels gained
        are joined, channels lost are left at once, and the page is told to reload; a user no
        longer active is signed out of the socket."""
        async with self.access_lock:
            user, channel_ids, latest = await database_sync_to_async(_reload_access)(self.user.pk)
            if self.disconnected:
                return
            if user is None:
                await self.leave_groups()
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            self.user = user
            if set(channel_ids) == set(self.channel_ids):
                return
            for channel_id in set(self.channel_ids) - set(channel_ids):
                group = events.channel_group(channel_id)
                if group in self.groups_joined:
                    self.groups_joined.remove(group)
                    await self.hub.leave(group, self)
            for channel_id in set(channel_ids) - set(self.channel_ids):
                await self.join(events.channel_group(channel_id))
            self.channel_ids = channel_ids
            if self.disconnected:  # it closed while we were joining
                await self.leave_groups()
                return
            await self.send_json({"type": "resync", "last_event_id": latest})

    # --- server → client ------------------------------------------------------------------

    async def deliver(self, batch: list[dict], texts: list[str]) -> None:
        """A committed batch's events from the hub, each already encoded once for every socket
        of this process; what this socket should see goes out as one frame when it asked for
        batches (`?batch=1`), else one frame per event."""
        if not self.groups_joined:
            return
        out = []
        for event, text in zip(batch, texts, strict=True):
            if event.get("type") == events.ACCESS_CHANGED:
                self.in_background(self.refresh_access())
            elif event.get("id") is None:
                # Presence (typing, viewing) is for the others: never echo it to its author.
                # It is ephemeral, so during a replay (or before the accept) it is dropped.
                if self.held is None and (event.get("data") or {}).get("user_id") != self.user.pk:
                    out.append(text)
            elif self.held is not None:
                if len(self.held) >= RESUME_LIMIT:
                    await self.close_too_slow()
                    return
                self.held.append(event)
            elif self.first_sending(event):
                out.append(text)
        if self.batched and len(out) > 1:
            await self.send_text("[" + ",".join(out) + "]")
        else:
            for text in out:
                await self.send_text(text)

    def first_sending(self, event: dict) -> bool:
        """Remember the event as sent on this socket; False when it already was."""
        event_id = event["id"]
        if event_id in self.sent_ids:
            return False
        self.sent_ids[event_id] = None
        self.last_event_id = max(self.last_event_id, event_id)
        if len(self.sent_ids) > REMEMBERED_IDS:
            self.sent_ids.popitem(last=False)
        return True

    async def send_event(self, event: dict) -> None:
        if self.first_sending(event):
            await self.send_text(json.dumps(event, separators=(",", ":")))

    async def send_json(self, content: dict) -> None:
        await self.send_text(json.dumps(content, separators=(",", ":")))

    async def send_text(self, text: str) -> None:
        self.bytes_sent += len(text)
        await self.send(text_data=text)
        if not self.groups_joined:
            return
        if self.bytes_sent - self.acked_bytes > self.send_buffer_limit:
            await self.close_too_slow()
        elif self.bytes_sent - self.bytes_at_last_ping > PING_EVERY_BYTES:
            await self.ping()

    async def close_too_slow(self) -> None:
        if self.too_slow_ping is not None:
            return
        logger.info("closing inbox socket of user %s: client is not reading", self.user.pk)
        await self.leave_groups()  # stop relaying at once
        # Frames still waiting for the server (uvicorn holds sends while the client's buffer is
        # full) are dropped: the page resumes from the last event it applied on its reconnect.
        self.outbox.discard_pending()
        self.too_slow_since = time.monotonic()
        await self.send(
            text_data=json.dumps(
                {"type": "closing", "code": CLOSE_TOO_SLOW, "reason": TOO_SLOW_REASON}
            )
        )
        self.too_slow_ping = await self.ping()

    async def ping(self) -> int:
        self.ping_seq += 1
        self.pings[self.ping_seq] = self.bytes_sent
        self.bytes_at_last_ping = self.bytes_sent
        await self.send(text_data=json.dumps({"type": "ping", "seq": self.ping_seq}))
        return self.ping_seq

    async def heartbeat_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(PING_INTERVAL)
                if self.too_slow_ping is not None:
                    if time.monotonic() - self.too_slow_since > SLOW_CLOSE_GRACE:
                        await self.close(
                            code=CLOSE_TOO_SLOW, reason=TOO_SLOW_REASON
                        )  # it never caught up
                        return
                    continue
                if time.monotonic() - self.last_received > IDLE_TIMEOUT:
                    await self.close(code=CLOSE_IDLE)
                    return
                await self.ping()
                refresh = min(
                    PRESENCE_REFRESH,
                    settings.SWITCHBOARD["AVAILABILITY_OFFLINE_AFTER_SECONDS"] / 3,
                )
                if time.monotonic() - self.last_seen_written > refresh:
                    await self.seen()
        except asyncio.CancelledError:
            pass

    async def resume(self, last_event_id: int | None) -> None:
        """Replay what the client missed after `last_event_id`, then say `ready` (or `stalled`
        while a group cannot be heard: a page told `ready` shows "Live").

        The groups are joined before the replay is read, so an event committed meanwhile is
        either in the replay or held live; ids already sent are skipped.
        """
        async with self.resume_lock:
            await self._resume(last_event_id)

    async def _resume(self, last_event_id: int | None) -> None:
        if self.disconnected:
            return
        if self.held is None:
            self.held = []
        if last_event_id is None:
            latest = await database_sync_to_async(_latest_event_id)()
        else:
            missed, latest = await database_sync_to_async(_missed_events)(
                self.channel_ids, last_event_id, self.user.pk
            )
            if missed is None:
                await self.send_json({"type": "resync", "last_event_id": latest})
            else:
                for event in missed:
                    await self.send_event(event)
        held, self.held = self.held, None
        for event in held or ():
            await self.send_event(event)
            latest = max(latest, event["id"])
        self.last_event_id = max(self.last_event_id, latest)
        if self.deaf_groups:
            await self.send_json({"type": "stalled", "last_event_id": latest})
        else:
            await self.send_json({"type": "ready", "last_event_id": latest})


def _channel_ids_for(user) -> list[int]:
    ids = visible_channel_ids(user)
    if ids is None:
        return list(Channel.objects.values_list("id", flat=True))
    return list(ids)


def _reload_access(user_id: int):
    """(user, channel ids, latest event id) from the database, or (None, [], 0) for a user
    who is no longer active."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None, [], 0
    return user, _channel_ids_for(user), _latest_event_id()


def _latest_event_id() -> int:
    return RealtimeEvent.objects.aggregate(latest=Max("id"))["latest"] or 0


def _missed_events(
    channel_ids: list[int], last_event_id: int, user_id: int | None = None
) -> tuple[list[dict] | None, int]:
    """Events after `last_event_id` on these channels, and those for this user alone (None
    when more than RESUME_LIMIT)."""
    after = Q(id__gt=last_event_id)
    seen_at = (
        RealtimeEvent.objects.filter(pk=last_event_id).values_list("created_at", flat=True).first()
    )
    if seen_at is not None:
        after |= Q(id__lte=last_event_id, created_at__gte=seen_at - RESUME_LOOKBACK)
    rows = list(
        RealtimeEvent.objects.filter(after)
        .filter(_for_sockets_of(channel_ids, user_id))
        .order_by("id")
        .values("id", "type", "payload", "counts", "views")[: RESUME_LIMIT + 1]
    )
    latest = max([last_event_id, *(row["id"] for row in rows)])
    if len(rows) > RESUME_LIMIT:
        return None, _latest_event_id()
    missed = [
        events.envelope(r["id"], r["type"], r["payload"], r["counts"], r["views"]) for r in rows
    ]
    return missed, latest


def _for_sockets_of(channel_ids: list[int], user_id: int | None) -> Q:
    where = Q(channel_id__in=channel_ids)
    if user_id is not None:
        where |= Q(user_id=user_id, channel_id__isnull=True)
    return where


def _broadcast_presence(user, kind: str, conversation_id):
    try:
        conversation = access_conversation_by_id(user, conversation_id)
    except (Http404, TypeError, ValueError):
        return None
    events.broadcast_ephemeral(
        kind,
        channel_id=conversation.channel_id,
        payload={
            "conversation_id": conversation.pk,
            "user_id": user.pk,
            "user_name": user.get_full_name() or user.get_username(),
        },
    )
    return conversation


def _send_typing_to_channel(conversation, user) -> None:
    """The provider's optional `send_typing` hook; failures are logged, never raised."""
    from .providers import DeliveryError, provider_for

    try:
        provider = provider_for(conversation.channel)
        hook = getattr(provider, "send_typing", None)
        if hook is not None:
            hook(conversation, user)
    except DeliveryError:
        pass  # no provider for this channel (or mode): no typing to send
    except Exception:
        logger.warning("typing notice for conversation %s not sent", conversation.pk, exc_info=True)


def _query_param(scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode()).get(name)
    return values[0] if values else None


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
