"""The webhook log: every platform delivery is kept, answered fast and processed in batches.

The door (`webhook_views.receive_webhook`) does the least that makes a delivery safe: it
authenticates it, checks its shape, stores the raw body with its verdict in one INSERT and
answers. A worker on the webhook queue (`drain`) claims accepted deliveries in batches and
hands each channel's share to its receiver, which translates them into the one ingest path.
Delivery is at least once: a claim has a lease, so a killed worker's batch is taken again
when it runs out, and ingest is idempotent. Staff read and replay deliveries in the admin.

A provider registers one `WebhookReceiver` per URL segment in its AppConfig.ready():

    register_receiver(TelegramReceiver())        # serves /webhooks/telegram/<channel_id>/

A delivery may belong to no channel (the Matrix appservice's transactions carry every
connected number's events, and arrive at their own URL): it is stored with `channel=None`,
deduplicated per source, and its receiver's `process` is handed `None` for the channel.
"""

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from .models import Channel, WebhookDelivery

logger = logging.getLogger(__name__)

Verdict = WebhookDelivery.Verdict
Outcome = WebhookDelivery.Outcome

# A rejected delivery is kept for inspection, but only its head: anyone can post garbage.
REJECTED_BODY_BYTES = 4096
KICK_KEY = "switchboard:webhooks:kick"
# PostgreSQL LISTEN/NOTIFY channel: every INSERT of an accepted delivery signals it in its own
# transaction (delivered at COMMIT, folded into one per transaction), which wakes the drainers
# (communications/drainer.py, `manage.py drain_webhooks`) at once.
NOTIFY_CHANNEL = "switchboard_webhooks"
# Each drainer refreshes this key about once a second; while it is there the Celery drain is
# not kicked (it would only compete with the drainer for the same rows and the same two cores:
# measured 13.6 CPU-s a minute at 1,000 webhooks/s). A killed drainer's key runs out after
# DRAINER_ALIVE_SECONDS and the kicks resume.
DRAINER_KEY = "switchboard:webhooks:drainer-alive"
DRAINER_ALIVE_SECONDS = 5
_drainer_seen_until = 0.0  # this process saw the key until then (monotonic): no Redis read


class WebhookRejected(Exception):
    """The delivery is not from the platform (bad signature or token): 401, nothing processed."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Malformed(Exception):
    """Authentic but not a payload we understand: 400 with the reason, kept for inspection."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Inspection:
    """What the door learns from a body: the key that makes two deliveries the same one
    (empty: the body's SHA-256, which is what a platform's redelivery repeats)."""

    dedup_key: str = ""


class WebhookReceiver:
    """What a platform's webhook must do; `integrations/<provider>/webhook.py` subclasses it."""

    source = ""  # the URL segment: /webhooks/<source>/<channel_id>/
    channel_kinds: tuple[str, ...] = ()
    kept_headers: tuple[str, ...] = ()  # stored with the body, for staff reading the log
    # True: a channel's deliveries are processed strictly in the order they arrived (Matrix:
    # an edit or a deletion must find the message an earlier transaction carried). While one
    # waits for its retry, the later ones are not claimed; the queue moves on once it is done
    # or has failed for good.
    in_order = False

    def handshake(self, channel: Channel, request) -> HttpResponse:
        """A GET (Meta's subscription challenge). Default: not allowed."""
        return JsonResponse({"detail": "this webhook accepts POST only"}, status=405)

    def authenticate(self, channel: Channel, request, body: bytes) -> None:
        """Raise WebhookRejected unless the request carries the channel's signature/token.
        Compare in constant time (hmac.compare_digest)."""
        raise NotImplementedError

    def inspect(self, channel: Channel, body: bytes) -> Inspection:
        """Check the body's shape quickly; raise Malformed with a reason a human can act on."""
        raise NotImplementedError

    def process(self, channel: Channel | None, deliveries: list["ClaimedDelivery"]) -> None:
        """In the worker: turn the deliveries (oldest first; `.pk`, `.body`, `.attempts`, not
        model instances; `channel` None for deliveries stored without one) into ingest calls,
        statuses and
        edits — ideally one `ingest_messages` batch for all of them. Must be idempotent: a
        delivery can be processed again (replay, a worker killed mid-batch)."""
        raise NotImplementedError

    def answer(self, duplicate: bool) -> tuple[int, bytes]:
        """Status and JSON body answering an accepted delivery (some platforms want a specific
        body). Bytes, not a response: the fast door sends them without building one."""
        return 200, ACCEPTED_BODIES[duplicate]


ACCEPTED_BODIES = {
    duplicate: json.dumps({"received": True, "duplicate": duplicate}).encode()
    for duplicate in (False, True)
}


_receivers: dict[str, WebhookReceiver] = {}


def register_receiver(receiver: WebhookReceiver) -> None:
    _receivers[receiver.source] = receiver


def receiver_for(source: str) -> WebhookReceiver | None:
    return _receivers.get(source)


def _in_order_sources() -> list[str]:
    return [source for source, receiver in _receivers.items() if receiver.in_order]


# --- the door -------------------------------------------------------------------------------


def kept_headers(receiver: WebhookReceiver, request) -> dict:
    names = ("Content-Type", "User-Agent", *receiver.kept_headers)
    return {name: request.headers[name] for name in names if name in request.headers}


def log_rejected(channel, source, headers, body, verdict, reason) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        channel=channel,
        source=source,
        headers=headers,
        body=bytes(body[:REJECTED_BODY_BYTES]),
        verdict=verdict,
        reason=reason[:2000],
        outcome=Outcome.SKIPPED,
    )


def log_accepted(
    channel: Channel | None,
    source: str,
    headers: dict,
    body: bytes,
    dedup_key: str = "",
    claim: bool = False,
) -> tuple[int, bool]:
    """Store an authentic delivery; returns (delivery id, duplicate). One INSERT: the unique
    constraint on (channel, dedup_key) — (source, dedup_key) without a channel — decides
    duplicates, also between concurrent requests.
    `claim` stores it already claimed by the caller, who processes it now (`process_claimed`)."""
    import json

    key = dedup_key or body_key(body)
    now = timezone.now()
    ops = connection.ops
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS) if claim else None
    table = WebhookDelivery._meta.db_table
    # The drainers are woken in the same statement (pg_notify of the stored row, none for a
    # duplicate); SQLite has no NOTIFY and its tests drain by hand or through Celery.
    notify = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            ("WITH stored AS (" if notify else "")
            + f"INSERT INTO {table} (channel_id, source, received_at, headers, body, verdict,"
            " reason, dedup_key, outcome, attempts, lease_until, processed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s, %s, %s, NULL)"
            " ON CONFLICT DO NOTHING RETURNING id"
            + (f") SELECT id, pg_notify('{NOTIFY_CHANNEL}', '') FROM stored" if notify else ""),
            [
                channel.pk if channel is not None else None,
                source,
                ops.adapt_datetimefield_value(now),
                json.dumps(headers),
                body,
                Verdict.ACCEPTED,
                key[:128],
                Outcome.PROCESSING if claim else Outcome.PENDING,
                1 if claim else 0,
                ops.adapt_datetimefield_value(lease),
            ],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0], False
    duplicate = WebhookDelivery.objects.create(
        channel=channel,
        source=source,
        received_at=now,
        headers=headers,
        body=body,
        verdict=Verdict.DUPLICATE,
        reason=f"same delivery as an earlier one ({key[:80]})",
        outcome=Outcome.SKIPPED,
    )
    return duplicate.pk, True


def body_key(body: bytes) -> str:
    """The dedup key of a delivery whose receiver names none: what a redelivery repeats."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def drainer_beat() -> None:
    """A drainer says it is alive (drainer.py calls this, at most once a second)."""
    try:
        cache.set(DRAINER_KEY, os.getpid(), timeout=DRAINER_ALIVE_SECONDS)
    except Exception:  # Redis is down: the kicks go on, harmlessly
        logger.warning("webhook drainer heartbeat unavailable", exc_info=True)


def drainer_seen_lately() -> bool:
    """Without I/O: this process saw a drainer's heartbeat within the last second."""
    return time.monotonic() < _drainer_seen_until


def drainer_running() -> bool:
    """A drain_webhooks process beat within DRAINER_ALIVE_SECONDS (Redis is read at most once
    a second per process while it does)."""
    global _drainer_seen_until
    if drainer_seen_lately():
        return True
    try:
        alive = cache.get(DRAINER_KEY) is not None
    except Exception:  # Redis is down: assume no drainer, kick as before
        return False
    if alive:
        _drainer_seen_until = time.monotonic() + 1.0
    return alive


def kick() -> bool:
    """Make sure something drains the log soon: nothing to do while a drainer runs; otherwise
    at most one queued drain task per few seconds. Returns False when no worker could be
    asked (the broker is down).

    The drain clears the flag when it finds the log empty and then looks once more, so a
    delivery stored in between is never left waiting for the sweeper."""
    from .tasks import process_webhook_deliveries

    if drainer_running():
        return True
    try:
        if not cache.add(KICK_KEY, 1, timeout=settings.WEBHOOK_KICK_SECONDS):
            return True
    except Exception:  # the cache (Redis) is down: queue anyway; the broker decides
        logger.warning("webhook kick flag unavailable", exc_info=True)
    try:
        process_webhook_deliveries.delay()
    except Exception:
        logger.warning("could not queue webhook processing", exc_info=True)
        _clear_kick()
        return False
    return True


def accepted(delivery_id: int) -> None:
    """After the door stored a delivery: wake a worker; with the broker down, process this
    delivery in the request rather than leave the customer's message waiting for it."""
    if not kick():
        process_one(delivery_id)


def process_one(delivery_id: int) -> int:
    """Claim and process one delivery now, unless a worker has it already (or, for an
    in-order source, an earlier one is unfinished: then it waits its turn)."""
    now = timezone.now()
    claimable = WebhookDelivery.objects.filter(_claimable(now), pk=delivery_id)
    claimed = claimable.exclude(_behind_an_unfinished_one(now)).update(
        outcome=Outcome.PROCESSING,
        lease_until=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    return process_claimed([delivery_id]) if claimed else 0


# --- the worker -----------------------------------------------------------------------------


def _claimable(now) -> Q:
    return Q(outcome=Outcome.PENDING) | Q(outcome=Outcome.PROCESSING, lease_until__lt=now)


def _behind_an_unfinished_one(now) -> Q:
    """A delivery of an in-order source with an earlier one of its channel still being
    processed or waiting for its retry."""
    earlier = WebhookDelivery.objects.filter(
        source=OuterRef("source"),
        id__lt=OuterRef("id"),
        outcome=Outcome.PROCESSING,
        lease_until__gte=now,
    )
    same_channel = Q(Exists(earlier.filter(channel_id=OuterRef("channel_id")))) | Q(
        Q(channel__isnull=True) & Exists(earlier.filter(channel__isnull=True))
    )
    return Q(source__in=_in_order_sources()) & same_channel


class ClaimedDelivery:
    """What a receiver gets of a claimed delivery: the columns the worker needs, not the model
    (no headers, no per-row channel: `process` is handed the channel once per group)."""

    __slots__ = ("pk", "source", "channel_id", "body", "attempts")

    def __init__(self, pk: int, source: str, channel_id: int, body, attempts: int):
        self.pk = pk
        self.source = source
        self.channel_id = channel_id
        self.body = body
        self.attempts = attempts

    @property
    def id(self) -> int:
        return self.pk


_CLAIM_SQL = """
WITH unfinished AS (
  SELECT source, channel_id, min(id) AS id FROM {table}
   WHERE source = ANY(%s) AND outcome = %s AND lease_until >= %s
   GROUP BY source, channel_id)
UPDATE {table} SET outcome = %s, lease_until = %s, attempts = attempts + 1
 WHERE id IN (SELECT id FROM {table} AS waiting
               WHERE (outcome = %s OR (outcome = %s AND lease_until < %s))
                 AND NOT EXISTS (SELECT FROM unfinished
                                  WHERE unfinished.source = waiting.source
                                    AND unfinished.channel_id IS NOT DISTINCT FROM waiting.channel_id
                                    AND unfinished.id < waiting.id)
               ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, source, channel_id, body, attempts
"""


def claim_deliveries(limit: int | None = None) -> list[ClaimedDelivery]:
    """Claim up to `limit` waiting deliveries, oldest first, for one lease, and return them.
    Concurrent workers skip each other's rows (SKIP LOCKED); an in-order source's delivery
    waits while an earlier one of its channel is unfinished. On PostgreSQL one statement:
    the claim returns the rows it took."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    if connection.vendor != "postgresql":
        return _load(claim_batch(limit))
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(table=WebhookDelivery._meta.db_table),
            [
                _in_order_sources(),
                Outcome.PROCESSING,
                ops.adapt_datetimefield_value(now),
                Outcome.PROCESSING,
                ops.adapt_datetimefield_value(lease),
                Outcome.PENDING,
                Outcome.PROCESSING,
                ops.adapt_datetimefield_value(now),
                limit,
            ],
        )
        rows = cursor.fetchall()
    rows.sort()  # RETURNING keeps no order: oldest first
    return [ClaimedDelivery(*row) for row in rows]


def claim_batch(limit: int | None = None) -> list[int]:
    """Claim up to `limit` waiting deliveries, oldest first, for one lease; returns their ids."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    if connection.vendor == "postgresql":
        return [delivery.pk for delivery in claim_deliveries(limit)]
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(_claimable(now))
            .exclude(_behind_an_unfinished_one(now))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            WebhookDelivery.objects.filter(id__in=ids).update(
                outcome=Outcome.PROCESSING,
                lease_until=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
                attempts=F("attempts") + 1,
            )
    return ids


def _load(ids: list[int]) -> list[ClaimedDelivery]:
    rows = (
        WebhookDelivery.objects.filter(id__in=ids, outcome=Outcome.PROCESSING)
        .order_by("id")
        .values_list("id", "source", "channel_id", "body", "attempts")
    )
    return [ClaimedDelivery(*row) for row in rows]


def process_claimed(ids: list[int]) -> int:
    """Process claimed deliveries (by id); returns how many succeeded."""
    return process_deliveries(_load(ids)) if ids else 0


def process_deliveries(deliveries: list[ClaimedDelivery]) -> int:
    """Process claimed deliveries, a channel's share at a time; returns how many succeeded.
    A failing batch is retried delivery by delivery, so one bad delivery fails alone. The
    successful ones are settled in one UPDATE at the end."""
    if not deliveries:
        return 0
    groups: dict[tuple[str, int], list[ClaimedDelivery]] = {}
    for delivery in deliveries:
        groups.setdefault((delivery.source, delivery.channel_id), []).append(delivery)
    channel_ids = {channel_id for _source, channel_id in groups if channel_id is not None}
    channels = Channel.objects.in_bulk(channel_ids) if channel_ids else {}
    done: list[ClaimedDelivery] = []
    for (source, channel_id), group in groups.items():
        receiver = receiver_for(source)
        channel = channels.get(channel_id)
        if receiver is None:
            _settle(group, Outcome.FAILED, f"no webhook receiver is registered for '{source}'")
            continue
        if channel_id is not None and (channel is None or not channel.is_active):
            _settle(group, Outcome.SKIPPED, "the channel is disabled")
            continue
        try:
            receiver.process(channel, group)
        except Exception:
            if len(group) == 1:
                _failed(group[0])
                continue
            logger.warning("webhook batch of %s failed; retrying one by one", len(group))
            for position, delivery in enumerate(group):
                try:
                    receiver.process(channel, [delivery])
                except Exception:
                    _failed(delivery)
                    if receiver.in_order:
                        _put_back(group[position + 1 :])
                        break
                else:
                    done.append(delivery)
        else:
            done.extend(group)
    if done:
        _settle(done, Outcome.DONE)
    return len(done)


def _settle(deliveries, outcome: str, reason: str = "") -> None:
    WebhookDelivery.objects.filter(id__in=[d.pk for d in deliveries]).update(
        outcome=outcome, reason=reason, lease_until=None, processed_at=timezone.now()
    )


def _put_back(deliveries: list[ClaimedDelivery]) -> None:
    """Not attempted after all (an earlier one of an in-order source failed): waiting again,
    behind it, with the attempt this claim counted taken back."""
    if deliveries:
        WebhookDelivery.objects.filter(id__in=[d.pk for d in deliveries]).update(
            outcome=Outcome.PENDING, lease_until=None, attempts=F("attempts") - 1
        )


def _failed(delivery: ClaimedDelivery) -> None:
    """Retry later with backoff (the lease doubles as the retry time), then give up visibly."""
    logger.exception("webhook delivery %s failed", delivery.pk)
    import traceback

    reason = traceback.format_exc(limit=3)[-2000:]
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        _settle([delivery], Outcome.FAILED, reason)
        return
    backoff = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        outcome=Outcome.PROCESSING,
        reason=reason,
        lease_until=timezone.now() + timedelta(seconds=backoff),
    )


def _clear_kick() -> None:
    try:
        cache.delete(KICK_KEY)
    except Exception:  # the flag only expires later: the next kick waits a few seconds
        logger.warning("webhook kick flag could not be cleared", exc_info=True)


def drain(max_seconds: float = 50.0) -> int:
    """Process batches until the log is empty (or time is up); returns deliveries processed."""
    deadline = timezone.now() + timedelta(seconds=max_seconds)
    total = 0
    looked_again = False
    helped = False
    while timezone.now() < deadline:
        claimed = claim_deliveries()
        if claimed:
            if not helped and len(claimed) >= settings.WEBHOOK_BATCH_SIZE:
                helped = _ask_for_help()
            total += process_deliveries(claimed)
            looked_again = False
            continue
        if looked_again:
            break
        _clear_kick()
        looked_again = True
    else:
        kick()  # time is up with work left: hand over to a fresh task
    return total


def _ask_for_help() -> bool:
    """A full batch means a backlog: queue one more drain so a second worker process shares it
    (claims skip each other's rows). Not in eager mode, where it would run inside this one."""
    from .tasks import process_webhook_deliveries

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True
    try:
        process_webhook_deliveries.delay()
    except Exception:  # the broker is down: this drain carries on alone
        logger.warning("could not queue a helping drain", exc_info=True)
    return True


def replay(ids) -> int:
    """Process these deliveries again (staff's replay). Ingest is idempotent, so a replay of
    what is already stored changes nothing. Returns how many were queued."""
    count = WebhookDelivery.objects.filter(
        id__in=list(ids), verdict__in=[Verdict.ACCEPTED, Verdict.DUPLICATE]
    ).update(outcome=Outcome.PENDING, lease_until=None, reason="", processed_at=None)
    if count:
        notify_drainers()
        transaction.on_commit(kick)
    return count


def notify_drainers() -> None:
    """Wake the drainers when the current transaction commits (now, in autocommit)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


def waiting_count() -> int:
    return WebhookDelivery.objects.filter(outcome__in=[Outcome.PENDING, Outcome.PROCESSING]).count()


def prune(days: int | None = None) -> int:
    days = settings.WEBHOOK_LOG_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = WebhookDelivery.objects.filter(
        received_at__lt=cutoff, outcome__in=[Outcome.DONE, Outcome.SKIPPED, Outcome.FAILED]
    ).delete()
    return deleted


def webhook_health() -> dict:
    """/health/'s "webhooks" entry: "stale" while deliveries wait longer than they should (no
    webhook worker is running, or the broker is down)."""
    now = timezone.now()
    waiting = WebhookDelivery.objects.filter(_claimable(now))
    stalled = waiting.filter(
        received_at__lt=now - timedelta(seconds=settings.WEBHOOK_STALL_SECONDS)
    ).count()
    failed = WebhookDelivery.objects.filter(
        outcome=Outcome.FAILED, received_at__gte=now - timedelta(days=1)
    ).count()
    return {"status": "stale" if stalled else "ok", "stalled": stalled, "failed_last_day": failed}
