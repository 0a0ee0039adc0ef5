"""Outgoing webhooks: every event an integrator subscribed to reaches its URL, signed, at least
once, in order per conversation — never lost.

- **Outbox.** `record_events` (communications/events.py) writes one OutgoingWebhookDelivery per
  (active subscription, event) in the same statement as the realtime events themselves
  (`outbox_sql`), so the row commits or rolls back with the change that caused the event, and a
  crash between commit and send loses nothing.
- **Worker.** After commit a kick queues `send_outgoing_webhooks` on its own queue
  (`CELERY_OUTGOING_QUEUE`); beat's sweep catches what no kick reached and retries that came due.
  A worker claims a batch with a lease before any HTTP call (a killed worker's batch is taken
  again when the lease runs out), posts each event and records the attempt.
- **Order.** Only the head of each (subscription, conversation) queue is claimable: a later
  event for a conversation waits until the earlier one is delivered or given up.
- **Retries.** Exponential backoff with jitter, capped, until `give_up_after`
  (OUTGOING_WEBHOOK_RETRY_HOURS after the event); a subscription whose failing streak reaches
  OUTGOING_WEBHOOK_DISABLE_AFTER_FAILURES attempts over that window is disabled with its reason,
  and the admins are mailed.
- **Signature.** `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`
  with the subscription's secret, `X-Switchboard-Timestamp: <unix seconds>` (reject old ones to
  stop replays) and `X-Switchboard-Event-Id` (the same on every attempt: deduplicate by it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import secrets as token_source
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import (
    OutgoingWebhookAttempt,
    OutgoingWebhookDelivery,
    OutgoingWebhookSubscription,
    RealtimeEvent,
)

logger = logging.getLogger(__name__)

State = OutgoingWebhookDelivery.State
EVENT_TYPES = OutgoingWebhookSubscription.EVENT_TYPES
KICK_KEY = "switchboard:outgoing-webhooks:kick"
SIGNATURE_HEADER = "X-Switchboard-Signature"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
EVENT_ID_HEADER = "X-Switchboard-Event-Id"
EVENT_TYPE_HEADER = "X-Switchboard-Event"
USER_AGENT = "Switchboard-Webhooks/1"
ERROR_CHARS = 500


def new_secret() -> str:
    return "whsec_" + token_source.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>.<raw body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
    """What a receiver does (documented in the README; used by the tests)."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature or "")


# --- the outbox, written with the events ------------------------------------------------------


def _window() -> timedelta:
    return timedelta(hours=settings.OUTGOING_WEBHOOK_RETRY_HOURS)


def outbox_sql() -> str:
    """The follow-up of the realtime events' INSERT (crm.bulk_sql.insert_rows_then): one
    delivery per active subscription that wants the event's type. A contact change is recorded
    once per channel of the contact; an integrator hears of it once per batch."""
    d = OutgoingWebhookDelivery._meta.db_table
    s = OutgoingWebhookSubscription._meta.db_table
    window = float(settings.OUTGOING_WEBHOOK_RETRY_HOURS) * 3600
    return (
        f'INSERT INTO "{d}" (subscription_id, event_id, event_type, conversation_id, created_at,'
        " state, attempts, next_attempt_at, give_up_after, last_error)"
        " SELECT s.id, ins.id, ins.type, ins.conversation_id, now(), 'pending', 0, now(),"
        f" now() + interval '{window:.0f} seconds', ''"
        f' FROM ins JOIN "{s}" s ON s.is_active AND jsonb_exists(s.events, ins.type)'
        " WHERE NOT (ins.type = 'contact.updated' AND EXISTS (SELECT 1 FROM ins e2"
        " WHERE e2.type = 'contact.updated' AND e2.payload -> 'id' = ins.payload -> 'id'"
        " AND e2.id < ins.id))"
        " ORDER BY ins.id, s.id RETURNING 1"
    )


def record_outbox_fallback(events: list[RealtimeEvent]) -> int:
    """The outbox where the combined statement is not available (SQLite, embedded mode)."""
    subscriptions = list(OutgoingWebhookSubscription.objects.filter(is_active=True))
    if not subscriptions:
        return 0
    now = timezone.now()
    seen_contacts: set = set()
    rows = []
    for event in events:
        if event.type == "contact.updated":
            key = event.payload.get("id") if isinstance(event.payload, dict) else None
            if key in seen_contacts:
                continue
            seen_contacts.add(key)
        for subscription in subscriptions:
            if event.type in (subscription.events or []):
                rows.append(
                    OutgoingWebhookDelivery(
                        subscription=subscription,
                        event_id=event.pk,
                        event_type=event.type,
                        conversation_id=event.conversation_id,
                        created_at=now,
                        next_attempt_at=now,
                        give_up_after=now + _window(),
                    )
                )
    OutgoingWebhookDelivery.objects.bulk_create(rows)
    return len(rows)


def after_outbox_write(count: int) -> None:
    if count:
        transaction.on_commit(kick)


# --- waking a worker ---------------------------------------------------------------------------


def kick() -> bool:
    """Make sure a worker sends soon: at most one queued task per few seconds. False when no
    worker could be asked (the broker is down; beat's sweep sends later)."""
    from ..tasks import send_outgoing_webhooks

    try:
        if not cache.add(KICK_KEY, 1, timeout=settings.OUTGOING_WEBHOOK_KICK_SECONDS):
            return True
    except Exception:
        logger.warning("outgoing webhook kick flag unavailable", exc_info=True)
    try:
        send_outgoing_webhooks.delay()
    except Exception:
        logger.warning("could not queue outgoing webhooks", exc_info=True)
        _clear_kick()
        return False
    return True


def _clear_kick() -> None:
    try:
        cache.delete(KICK_KEY)
    except Exception:
        logger.warning("outgoing webhook kick flag could not be cleared", exc_info=True)


# --- claiming ---------------------------------------------------------------------------------


def _due(now) -> Q:
    return Q(state=State.PENDING, next_attempt_at__lte=now) | Q(
        state=State.SENDING, lease_until__lt=now
    )


def claim_batch(limit: int | None = None) -> list[int]:
    """Claim up to `limit` due deliveries for one lease, oldest event first. Only the head of
    each (subscription, conversation) queue qualifies; concurrent workers skip each other's
    rows (SKIP LOCKED)."""
    limit = limit or settings.OUTGOING_WEBHOOK_BATCH_SIZE
    now = timezone.now()
    earlier = OutgoingWebhookDelivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        conversation_id=OuterRef("conversation_id"),
        state__in=[State.PENDING, State.SENDING],
        event_id__lt=OuterRef("event_id"),
    )
    with transaction.atomic():
        ids = list(
            OutgoingWebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(_due(now), subscription__is_active=True)
            .filter(Q(conversation_id__isnull=True) | ~Exists(earlier))
            .order_by("event_id", "id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            OutgoingWebhookDelivery.objects.filter(id__in=ids).update(
                state=State.SENDING,
                lease_until=now + timedelta(seconds=settings.OUTGOING_WEBHOOK_LEASE_SECONDS),
                attempts=F("attempts") + 1,
            )
    return ids


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Result:
    delivery: OutgoingWebhookDelivery
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str
    started_at: object


class _Http:
    """One keep-alive session per process (a forked worker child gets its own)."""

    session: requests.Session | None = None
    pid: int | None = None

    @classmethod
    def get(cls) -> requests.Session:
        if cls.session is None or cls.pid != os.getpid():
            cls.session = requests.Session()
            cls.pid = os.getpid()
        return cls.session


def body_for(delivery: OutgoingWebhookDelivery, event: RealtimeEvent | None) -> bytes:
    document = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "created_at": event.created_at.isoformat() if event else None,
        "data": event.payload if event else None,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def post(delivery: OutgoingWebhookDelivery, body: bytes) -> Result:
    subscription = delivery.subscription
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(subscription.signing_secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.event_type,
    }
    started_at = timezone.now()
    began = time.monotonic()
    try:
        response = _Http.get().post(
            subscription.url,
            data=body,
            headers=headers,
            timeout=settings.OUTGOING_WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        latency = int((time.monotonic() - began) * 1000)
        return Result(delivery, False, None, latency, f"{type(exc).__name__}: {exc}", started_at)
    latency = int((time.monotonic() - began) * 1000)
    ok = 200 <= response.status_code < 300
    error = "" if ok else f"HTTP {response.status_code}: {response.text[:ERROR_CHARS]}"
    return Result(delivery, ok, response.status_code, latency, error, started_at)


def send_claimed(ids: list[int]) -> int:
    """Post every claimed delivery and record the outcome; returns how many were delivered.
    Stops before a call that could outlast the lease and hands the rest back."""
    deliveries = list(
        OutgoingWebhookDelivery.objects.filter(id__in=ids, state=State.SENDING)
        .select_related("subscription")
        .order_by("event_id", "id")
    )
    events = RealtimeEvent.objects.in_bulk({d.event_id for d in deliveries})
    results: list[Result] = []
    handed_back: list[int] = []
    for delivery in deliveries:
        time_left = (delivery.lease_until - timezone.now()).total_seconds()
        if time_left < settings.OUTGOING_WEBHOOK_TIMEOUT + 1:
            handed_back.append(delivery.pk)
            continue
        event = events.get(delivery.event_id)
        if event is None:
            results.append(
                Result(delivery, False, None, 0, "the event is no longer kept", timezone.now())
            )
            continue
        results.append(post(delivery, body_for(delivery, event)))
    if handed_back:
        OutgoingWebhookDelivery.objects.filter(id__in=handed_back, state=State.SENDING).update(
            state=State.PENDING, lease_until=None, attempts=F("attempts") - 1
        )
    record_results(results)
    return sum(1 for r in results if r.ok)


def retry_delay(attempts: int) -> float:
    """base·2^(n-1), capped, with jitter: a random point in the upper half of the step."""
    step = settings.OUTGOING_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    step = min(step, settings.OUTGOING_WEBHOOK_MAX_BACKOFF_SECONDS)
    return step / 2 + random.random() * step / 2


def record_results(results: list[Result]) -> None:
    if not results:
        return
    now = timezone.now()
    OutgoingWebhookAttempt.objects.bulk_create(
        [
            OutgoingWebhookAttempt(
                delivery_id=r.delivery.pk,
                started_at=r.started_at,
                status_code=r.status_code,
                latency_ms=r.latency_ms,
                ok=r.ok,
                error=r.error[:2000],
            )
            for r in results
        ]
    )
    delivered = [r for r in results if r.ok]
    # Each settles only if this worker still holds it (a redeliver may have reset it).
    for status_code in {r.status_code for r in delivered}:
        OutgoingWebhookDelivery.objects.filter(
            id__in=[r.delivery.pk for r in delivered if r.status_code == status_code],
            state=State.SENDING,
        ).update(
            state=State.DELIVERED,
            delivered_at=now,
            lease_until=None,
            last_status_code=status_code,
            last_error="",
        )
    succeeded = {r.delivery.subscription_id for r in delivered}
    # A success ends a failing streak (as read with the batch: no statement when none is on).
    streaks = {
        r.delivery.subscription_id
        for r in delivered
        if r.delivery.subscription.consecutive_failures
    }
    if streaks:
        OutgoingWebhookSubscription.objects.filter(
            id__in=streaks, consecutive_failures__gt=0
        ).update(consecutive_failures=0, failing_since=None)
    failures: dict[int, list[Result]] = {}
    for r in results:
        if not r.ok:
            failures.setdefault(r.delivery.subscription_id, []).append(r)
    for subscription_id, failed in failures.items():
        for r in failed:
            _failed(r, now)
        if subscription_id not in succeeded:
            _count_failures(subscription_id, len(failed), failed[-1].error, now)


def _failed(result: Result, now) -> None:
    delivery = result.delivery
    give_up_after = delivery.give_up_after or delivery.created_at + _window()
    fields = {"last_status_code": result.status_code, "last_error": result.error[:2000]}
    if now >= give_up_after:
        fields.update(state=State.FAILED, lease_until=None)
    else:
        retry_at = min(now + timedelta(seconds=retry_delay(delivery.attempts)), give_up_after)
        fields.update(state=State.PENDING, lease_until=None, next_attempt_at=retry_at)
    OutgoingWebhookDelivery.objects.filter(pk=delivery.pk, state=State.SENDING).update(**fields)


def _count_failures(subscription_id: int, count: int, error: str, now) -> None:
    OutgoingWebhookSubscription.objects.filter(pk=subscription_id).update(
        consecutive_failures=F("consecutive_failures") + count,
        failing_since=Coalesce(F("failing_since"), now),
    )
    subscription = OutgoingWebhookSubscription.objects.get(pk=subscription_id)
    if (
        subscription.is_active
        and subscription.consecutive_failures >= settings.OUTGOING_WEBHOOK_DISABLE_AFTER_FAILURES
        and subscription.failing_since <= now - _window()
    ):
        disable(
            subscription,
            reason=(
                f"{subscription.consecutive_failures} deliveries in a row failed since "
                f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC; last: {error[:300]}"
            ),
        )


def disable(subscription: OutgoingWebhookSubscription, *, reason: str) -> bool:
    """Stop sending to a subscription that keeps failing: its waiting deliveries are given up
    (staff can redeliver them), the reason is shown in the admin and the API, admins are
    mailed. Returns False if it was disabled already."""
    now = timezone.now()
    with transaction.atomic():
        changed = OutgoingWebhookSubscription.objects.filter(
            pk=subscription.pk, is_active=True
        ).update(is_active=False, disabled_reason=reason, disabled_at=now)
        if not changed:
            return False
        OutgoingWebhookDelivery.objects.filter(
            subscription_id=subscription.pk, state__in=[State.PENDING, State.SENDING]
        ).update(
            state=State.FAILED,
            lease_until=None,
            last_error="not sent: the subscription was disabled",
        )
    logger.warning("outgoing webhook %s disabled: %s", subscription.pk, reason)
    mail_admins(
        f"Outgoing webhook disabled: {subscription}",
        f"The outgoing webhook to {subscription.url} (#{subscription.pk}) was disabled.\n\n"
        f"Reason: {reason}\n\nEnable it again in the admin once the receiver works; its "
        "undelivered events can be redelivered from its delivery log.",
        fail_silently=True,
    )
    return True


def enable(subscription: OutgoingWebhookSubscription) -> None:
    OutgoingWebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=True,
        disabled_reason="",
        disabled_at=None,
        consecutive_failures=0,
        failing_since=None,
    )


def redeliver(ids) -> int:
    """Send these deliveries again (staff's action), with a fresh retry window. The receiver
    gets the same event id and deduplicates. Returns how many were queued."""
    now = timezone.now()
    count = OutgoingWebhookDelivery.objects.filter(id__in=list(ids)).update(
        state=State.PENDING,
        next_attempt_at=now,
        give_up_after=now + _window(),
        lease_until=None,
        last_error="",
    )
    if count:
        transaction.on_commit(kick)
    return count


def drain(max_seconds: float | None = None) -> int:
    """Send batches until nothing is due (or time is up); returns deliveries delivered."""
    if max_seconds is None:
        max_seconds = min(50.0, settings.OUTGOING_WEBHOOK_LEASE_SECONDS / 2)
    deadline = time.monotonic() + max_seconds
    total = 0
    looked_again = False
    while time.monotonic() < deadline:
        ids = claim_batch()
        if ids:
            total += send_claimed(ids)
            looked_again = False
            continue
        if looked_again:
            break
        _clear_kick()
        looked_again = True
    else:
        kick()
    return total


def prune(days: int | None = None) -> int:
    days = settings.OUTGOING_WEBHOOK_LOG_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = OutgoingWebhookDelivery.objects.filter(
        created_at__lt=cutoff, state__in=[State.DELIVERED, State.FAILED]
    ).delete()
    return deleted


def uses_combined_insert() -> bool:
    return connection.vendor == "postgresql"
