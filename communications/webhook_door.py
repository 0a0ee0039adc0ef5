"""The fast door: accepted webhook deliveries answered without Django's request machinery.

`crm/asgi.py` puts `WebhookDoor` in front of Django's ASGI handler. It serves only the hot,
happy path of the one door (`webhook_views.receive_webhook`):

    POST /webhooks/<source>/<channel_id>/
    POST /api/v1/channels/<channel_id>/inbound/   with `Prefer: respond-async` (202)
    GET  /health/live/                            200 "ok" (liveness; the HTTP ceiling anchor)

and does exactly what the Django view does, with the same receivers: throttle
(webhook_guard), authenticate and inspect (the receiver's own methods), store the raw delivery,
answer with the receiver's response, kick the drain. Anything else — an unknown channel, a
wrong signature, a malformed body, a disabled API channel, a GET handshake, a huge body, a
database error, a database that is not PostgreSQL — is handed to Django unchanged (the body
replayed), so every refusal keeps the one implementation, its logging and its tests.

Why not a Django view: under ASGI a sync view costs a thread hop, and Django's handler and
middleware cost more per request than the whole accept path; one process's Python shares one
core. Measured figures are in docs/ARCHITECTURE.md ("Webhook throughput").

Group commit: concurrent requests of one process are stored together. Each request puts its
row on the process's `DeliveryWriter` and waits; the writer takes everything waiting (up to
WEBHOOK_DOOR_BATCH rows), runs ONE multi-row `INSERT … ON CONFLICT DO NOTHING` (the unique
(channel, dedup_key) among accepted deliveries decides duplicates, also between processes),
one INSERT of the duplicates' log rows, and COMMIT — then answers every request of the batch.
A request is answered 200 only after its row is committed: durability is the Django view's.
Nothing waits on a timer: while one batch commits the next one gathers, a lone request is a
batch of one. The database is reached through an async psycopg pool (no thread hop per
request); the throttle counters and the kick are one thread hop per batch.

Channels are cached per process for WEBHOOK_DOOR_CHANNEL_TTL seconds (default 2): a rotated
token or a disabled channel takes effect in every process within that time.
"""

import asyncio
import functools
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import HttpHeaders, split_domain_port, validate_host

from . import webhook_guard, webhooks
from .models import Channel, WebhookDelivery

logger = logging.getLogger(__name__)

Verdict = WebhookDelivery.Verdict
Outcome = WebhookDelivery.Outcome

WEBHOOK_PATH = re.compile(r"^/webhooks/([-a-zA-Z0-9_]+)/([0-9]{1,18})/$")
API_INBOUND_PATH = re.compile(r"^/api/v1/channels/([0-9]{1,18})/inbound/$")
LIVE_PATH = "/health/live/"
# Bodies above this go to Django (its own size limits and errors apply there).
MAX_BODY = 1024 * 1024


class FallThrough(Exception):
    """Not the happy path: Django answers this request."""


class DoorRequest:
    """What receivers and webhook_guard read from a request: `headers`, `META`, `GET`."""

    def __init__(self, scope, body: bytes):
        meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0]}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            text = value.decode("latin-1")
            meta[key] = f"{meta[key]},{text}" if key in meta else text
        self.META = meta
        self.headers = HttpHeaders(meta)
        self.body = body
        self.method = scope["method"]


# --- channels, cached per process -----------------------------------------------------------


class ChannelCache:
    def __init__(self):
        self._entries: dict[int, tuple[float, Channel | None]] = {}

    async def get(self, channel_id: int) -> Channel | None:
        now = time.monotonic()
        entry = self._entries.get(channel_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        channel = await sync_to_async(_load_channel)(channel_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[channel_id] = (now + settings.WEBHOOK_DOOR_CHANNEL_TTL, channel)
        return channel

    def clear(self) -> None:
        self._entries.clear()


def _load_channel(channel_id: int) -> Channel | None:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is not None:
        channel.secrets  # decrypt once, in the thread, not per request  # noqa: B018
    return channel


# --- the writer (group commit) --------------------------------------------------------------


class _Item:
    __slots__ = ("channel_id", "source", "headers", "body", "key", "address", "future")

    def __init__(self, channel_id, source, headers, body, key, address, future):
        self.channel_id = channel_id
        self.source = source
        self.headers = headers
        self.body = body
        self.key = key
        self.address = address
        self.future = future


# The stored rows also wake the drainers: pg_notify in the same statement, delivered at COMMIT
# and folded by PostgreSQL into one notification per transaction (no extra round trip).
_INSERT_ACCEPTED = """
WITH stored AS (
INSERT INTO {table} (channel_id, source, received_at, headers, body, verdict, reason,
                     dedup_key, outcome, attempts, lease_until, processed_at)
SELECT c, s, %(now)b, h::jsonb, b, 'accepted', '', k, 'pending', 0, NULL, NULL
  FROM unnest(%(channels)b::bigint[], %(sources)b::text[], %(headers)b::text[],
              %(bodies)b::bytea[], %(keys)b::text[]) WITH ORDINALITY AS t(c, s, h, b, k, n)
 ORDER BY n
ON CONFLICT DO NOTHING
RETURNING id, channel_id, dedup_key
)
SELECT id, channel_id, dedup_key, pg_notify('{channel}', '') FROM stored
"""

_INSERT_DUPLICATES = """
INSERT INTO {table} (channel_id, source, received_at, headers, body, verdict, reason,
                     dedup_key, outcome, attempts, lease_until, processed_at)
SELECT c, s, %(now)b, h::jsonb, b, 'duplicate', r, '', 'skipped', 0, NULL, NULL
  FROM unnest(%(channels)b::bigint[], %(sources)b::text[], %(headers)b::text[],
              %(bodies)b::bytea[], %(reasons)b::text[]) WITH ORDINALITY AS t(c, s, h, b, r, n)
 ORDER BY n
RETURNING id
"""


@functools.cache
def stores_in_postgresql() -> bool:
    """The door writes with psycopg (ON CONFLICT, pg_notify): on SQLite — the embedded mode —
    Django answers every webhook (before, each one waited 10 s for a pool that cannot open)."""
    return settings.DATABASES["default"]["ENGINE"] in (
        "crm.postgresql",
        "django.db.backends.postgresql",
    )


def _conninfo() -> str:
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {
        "dbname": db.get("NAME"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": str(db.get("PORT") or ""),
    }
    return make_conninfo("", **{k: v for k, v in params.items() if v})


class DeliveryWriter:
    """One per process (and event loop): gathers rows and stores them a batch at a time."""

    def __init__(self):
        self.queue: list[_Item] = []
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.pool = None
        self.loop = None
        # The throttle counters and the kick are sync (Redis): they run on this one thread.
        # Not asyncio.to_thread: Django's caches are context-local and tagged with a thread,
        # so every to_thread hop built a new cache, pool and Redis connection (measured: about
        # three connects per batch). This thread keeps its own for good.
        self.redis_thread = ThreadPoolExecutor(1, thread_name_prefix="webhook-door")
        self.batches = 0  # group commits run (tests and the bench read these two)
        self.statements = 0  # statements those ran, COMMIT included

    async def store(self, channel_id, source, headers, body, key, address) -> tuple[int, bool]:
        """(delivery id, duplicate) once the row is committed. Raises webhook_guard.Refused
        (throttled) or FallThrough (the database refused the row: Django will find out why)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (tests): start afresh on it
            self.loop = loop
            self.pool = None
            self.queue = []
            self.wakeup = asyncio.Event()
            self.task = None
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        future = loop.create_future()
        self.queue.append(_Item(channel_id, source, headers, body, key, address, future))
        self.wakeup.set()
        return await future

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.pool is not None:
            await self.pool.close()
        self.pool = self.task = self.loop = None

    async def _run(self):
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                batch = self.queue[: settings.WEBHOOK_DOOR_BATCH]
                del self.queue[: len(batch)]
                try:
                    await self._write(batch)
                except Exception as error:  # noqa: BLE001 - every caller must be answered
                    logger.warning("webhook door batch of %d failed: %s", len(batch), error)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(FallThrough(str(error)))

    async def _connection(self):
        from psycopg_pool import AsyncConnectionPool

        if self.pool is None:
            self.pool = AsyncConnectionPool(
                _conninfo(),
                min_size=1,
                max_size=2,
                open=False,
                kwargs={"autocommit": False, "prepare_threshold": 0},
            )
            await self.pool.open(wait=True, timeout=10)
        return self.pool.connection(timeout=10)

    async def _write(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        admitted = await loop.run_in_executor(self.redis_thread, _guard, batch)
        batch = [item for item, ok in zip(batch, admitted, strict=False) if ok]
        if not batch:
            return
        now = datetime.now(UTC)
        table = WebhookDelivery._meta.db_table
        async with await self._connection() as conn:
            async with conn.transaction():
                cursor = await conn.execute(
                    _INSERT_ACCEPTED.format(table=table, channel=webhooks.NOTIFY_CHANNEL),
                    {
                        "now": now,
                        "channels": [i.channel_id for i in batch],
                        "sources": [i.source for i in batch],
                        "headers": [json.dumps(i.headers) for i in batch],
                        "bodies": [i.body for i in batch],
                        "keys": [i.key for i in batch],
                    },
                )
                self.statements += 1
                stored = {(row[1], row[2]): row[0] for row in await cursor.fetchall()}
                firsts: list[tuple[_Item, int]] = []
                duplicates: list[_Item] = []
                for item in batch:
                    delivery_id = stored.pop((item.channel_id, item.key), None)
                    if delivery_id is None:
                        duplicates.append(item)
                    else:
                        firsts.append((item, delivery_id))
                duplicate_ids: list[int] = []
                if duplicates:
                    cursor = await conn.execute(
                        _INSERT_DUPLICATES.format(table=table),
                        {
                            "now": now,
                            "channels": [i.channel_id for i in duplicates],
                            "sources": [i.source for i in duplicates],
                            "headers": [json.dumps(i.headers) for i in duplicates],
                            "bodies": [i.body for i in duplicates],
                            "reasons": [
                                f"same delivery as an earlier one ({i.key[:80]})"
                                for i in duplicates
                            ],
                        },
                    )
                    self.statements += 1
                    duplicate_ids = [row[0] for row in await cursor.fetchall()]
            self.statements += 1  # the COMMIT
        # Committed: every row of the batch is safe. Wake the worker, then answer.
        self.batches += 1
        if firsts and not webhooks.drainer_seen_lately():  # else a drainer is on its way
            ids = [delivery_id for _, delivery_id in firsts]
            await loop.run_in_executor(self.redis_thread, _kick, ids)
        for item, delivery_id in firsts:
            if not item.future.done():
                item.future.set_result((delivery_id, False))
        for item, delivery_id in zip(duplicates, duplicate_ids, strict=False):
            if not item.future.done():
                item.future.set_result((delivery_id, True))


def _guard(batch: list[_Item]) -> list[bool]:
    """The throttles of webhook_guard for a whole batch (in a thread: Redis is sync): refused
    items get their 429 here. Returns, per item, whether it goes on to be stored."""
    admitted = []
    blocked: dict[tuple[str, int], webhook_guard.Refused | None] = {}
    per_channel: dict[int, list[_Item]] = {}
    for item in batch:
        place = (item.address, item.channel_id)
        if place not in blocked:
            try:
                webhook_guard.check_not_blocked_address(item.address, item.channel_id)
                blocked[place] = None
            except webhook_guard.Refused as refused:
                blocked[place] = refused
        if blocked[place] is not None:
            item.future.get_loop().call_soon_threadsafe(_refuse, item.future, blocked[place])
            admitted.append(False)
            continue
        per_channel.setdefault(item.channel_id, []).append(item)
        admitted.append(True)
    refused_items = set()
    for channel_id, items in per_channel.items():
        for item, refused in zip(
            items, webhook_guard.admit_deliveries(channel_id, len(items)), strict=True
        ):
            if refused is not None:
                refused_items.add(id(item))
                item.future.get_loop().call_soon_threadsafe(_refuse, item.future, refused)
    return [ok and id(item) not in refused_items for item, ok in zip(batch, admitted, strict=True)]


def _refuse(future, refused) -> None:
    if not future.done():
        future.set_exception(refused)


def _kick(delivery_ids: list[int]) -> None:
    """As `webhooks.accepted`, once per batch: with the broker down, the batch is processed
    before its requests are answered rather than left waiting for the sweeper."""
    if not webhooks.kick():
        for delivery_id in delivery_ids:
            webhooks.process_one(delivery_id)


# --- the ASGI app ---------------------------------------------------------------------------


channel_cache = ChannelCache()
writer = DeliveryWriter()


class WebhookDoor:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == LIVE_PATH:
            return await _answer(send, 200, b"ok", b"text/plain")
        if scope["method"] != "POST" or not (
            path.startswith("/webhooks/") or path.startswith("/api/v1/channels/")
        ):
            return await self.app(scope, receive, send)
        body, complete = await _read_body(receive)
        if complete:
            try:
                return await self._accept(scope, body, send)
            except FallThrough:
                pass
        await self.app(scope, _replay(body, complete, receive), send)

    async def _accept(self, scope, body: bytes, send):
        if not stores_in_postgresql():
            raise FallThrough
        match = WEBHOOK_PATH.match(scope["path"])
        if match:
            source, channel_id, api_async = match[1], int(match[2]), False
        else:
            match = API_INBOUND_PATH.match(scope["path"])
            if not match:
                raise FallThrough
            source, channel_id, api_async = "api", int(match[1]), True
        receiver = webhooks.receiver_for(source)
        if receiver is None:
            raise FallThrough
        request = DoorRequest(scope, body)
        if api_async and not _prefers_async(request):
            raise FallThrough  # the synchronous API answer carries the stored message
        if not _host_allowed(request, scope):
            raise FallThrough
        channel = await channel_cache.get(channel_id)
        if channel is None or channel.kind not in receiver.channel_kinds:
            raise FallThrough
        if api_async and not channel.is_active:
            raise FallThrough
        try:
            receiver.authenticate(channel, request, body)
            inspection = receiver.inspect(channel, body)
        except (webhooks.WebhookRejected, webhooks.Malformed):
            raise FallThrough from None
        key = inspection.dedup_key or webhooks.body_key(body)
        try:
            delivery_id, duplicate = await writer.store(
                channel.pk,
                receiver.source,
                webhooks.kept_headers(receiver, request),
                body,
                key[:128],
                request.META["REMOTE_ADDR"],
            )
        except webhook_guard.Refused as refused:
            payload = json.dumps({"detail": refused.detail}).encode()
            extra = [(b"retry-after", str(refused.retry_after).encode())]
            return await _answer(send, 429, payload, b"application/json", extra)
        if api_async:
            payload = json.dumps({"delivery_id": delivery_id, "duplicate": duplicate}).encode()
            return await _answer(send, 202, payload, b"application/json")
        status, payload = receiver.answer(duplicate)
        return await _answer(send, status, payload, b"application/json")


async def _read_body(receive) -> tuple[bytes, bool]:
    """The body, or what was read of it when it is too large (complete False)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed


def _prefers_async(request) -> bool:
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "respond-async" for part in prefer.split(","))


def _host_allowed(request, scope) -> bool:
    """What Django's host validation and SSL redirect would say, cheaply."""
    if settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https":
        return False
    host = request.headers.get("Host", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


async def _answer(send, status: int, body: bytes, content_type: bytes, extra=()):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
