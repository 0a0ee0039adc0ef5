"""Celery tasks: thin wrappers that pass ids and call services."""

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .models import EarlyStatus, Message, RealtimeEvent
from .providers import (
    AmbiguousDeliveryError,
    MediaFetchError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    fetch_attachment,
    provider_for,
)
from .services import attachments, delivery
from .services.send import queue_delivery, update_message_status

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_KEY = "switchboard:worker-heartbeat"


# A worker stuck past the lease is stopped (hard limit) and its task re-run, which then sees
# the expired claim; the soft limit lands first, inside the provider call: ambiguous.
_LEASE = settings.SWITCHBOARD["SEND_LEASE_SECONDS"]


@shared_task(acks_late=True, soft_time_limit=max(_LEASE * 0.8, 1), time_limit=_LEASE)
def deliver_message(message_id: int) -> str:
    """Hand one outbound message to its provider, at most once per claim. Safe to run twice."""
    message = Message.objects.select_related("channel").filter(pk=message_id).first()
    if message is None or message.direction != Message.Direction.OUTBOUND:
        return "skipped"
    try:
        provider = provider_for(message.channel)
    except PermanentDeliveryError as exc:
        if message.status != Message.Status.PENDING:
            return "skipped"  # a claim in flight is settled by the sweeper, as "unknown"
        return _fail_unclaimed(message, exc.reason)
    resend_is_safe = getattr(provider, "resend_is_safe", False)
    if message.status == Message.Status.SENDING:
        if message.lease_until and message.lease_until > timezone.now():
            # Another attempt holds it (or held it when its worker died): look again when its
            # lease runs out.
            wait = (message.lease_until - timezone.now()).total_seconds() + 1
            if not deliver_message.app.conf.task_always_eager:
                queue_delivery(message_id, countdown=wait)
            return "claimed elsewhere"
        outcome = delivery.settle_expired_claim(message, resend_is_safe=resend_is_safe)
        if outcome != "resend":
            return outcome
    claim = delivery.claim(message_id)
    if claim is None:
        return _why_not_claimed(message_id)
    try:
        result = provider.send(claim.message)
    except PermanentDeliveryError as exc:
        delivery.settle(claim, Message.Status.FAILED, reason=exc.reason)
        return "failed"
    except (AmbiguousDeliveryError, SoftTimeLimitExceeded) as exc:
        reason = getattr(exc, "reason", "the send took longer than its lease")
        if not resend_is_safe:
            delivery.settle(claim, Message.Status.UNKNOWN, reason=reason)
            return "unknown"
        return _retry_later(claim, reason)
    except TemporaryDeliveryError as exc:
        return _retry_later(claim, exc.reason, not_before=exc.retry_after)
    except Exception as exc:
        # A missing media file, a bug, a database error inside the provider: no retry will
        # fix it by itself, and the message must not sit in "sending" until the lease ends.
        logger.exception("message %s: unexpected error while sending", message_id)
        delivery.settle(
            claim,
            Message.Status.FAILED,
            reason=f"unexpected error: {exc.__class__.__name__}: {exc}",
        )
        return "failed"
    delivery.settle(claim, Message.Status.SENT, external_id=result.external_id)
    return "sent"


def _retry_later(claim: delivery.Claim, reason: str, not_before: float | None = None) -> str:
    message_id = claim.message.pk
    if claim.attempt > settings.SWITCHBOARD["SEND_MAX_RETRIES"]:
        delivery.settle(
            claim,
            Message.Status.FAILED,
            reason=f"{reason} (gave up after {claim.attempt} attempts)",
        )
        return "failed"
    delay = delivery.release_for_retry(claim, reason, not_before=not_before)
    if delay is None:
        return "skipped"
    logger.warning("message %s: %s; retrying in %.1fs", message_id, reason, delay)
    if deliver_message.app.conf.task_always_eager:
        # Without a worker there is nobody to wait for: try again now, bounded by attempts.
        return deliver_message(message_id)
    queue_delivery(message_id, countdown=delay)
    return "retrying"


def _fail_unclaimed(message: Message, reason: str) -> str:
    """No provider can take it (the channel kind has none, the mode is unavailable)."""
    if update_message_status(message.pk, Message.Status.FAILED, reason=reason):
        delivery.queue_next(message.conversation_id)
        return "failed"
    return "skipped"


def _why_not_claimed(message_id: int) -> str:
    status = Message.objects.filter(pk=message_id).values_list("status", flat=True).first()
    if status == Message.Status.PENDING:
        return "waiting"  # an earlier message of the conversation goes first
    if status == Message.Status.SENDING:
        return "claimed elsewhere"
    return "skipped"


@shared_task
def sweep_outbound() -> dict:
    """Beat, every minute: re-queue pending messages whose task never ran, and settle claims
    whose worker died (resend where safe, else "unknown"). Returns what it did."""
    requeued = 0
    for message_id in delivery.stuck_pending().values_list("id", flat=True)[:1000]:
        queue_delivery(message_id)
        requeued += 1
    settled = {"resend": 0, "unknown": 0}
    for message in delivery.expired_claims().select_related("channel")[:1000]:
        try:
            safe = getattr(provider_for(message.channel), "resend_is_safe", False)
        except PermanentDeliveryError:
            safe = False
        outcome = delivery.settle_expired_claim(message, resend_is_safe=safe)
        if outcome == "resend":
            queue_delivery(message.pk)
        if outcome in settled:
            settled[outcome] += 1
    report = {"requeued": requeued, "resent": settled["resend"], "unknown": settled["unknown"]}
    if any(report.values()):
        logger.warning("outbound sweep: %s", report)
    return report


@shared_task
def worker_heartbeat() -> str:
    """Beat runs this every 30 s; /health/ reports a worker whose heartbeat is stale."""
    now = timezone.now().isoformat()
    cache.set(WORKER_HEARTBEAT_KEY, now, timeout=3600)
    return now


@shared_task
def prune_realtime_events(batch_size: int = 10_000) -> int:
    """Delete realtime events older than the retention, a batch at a time (short locks)."""
    hours = settings.SWITCHBOARD["REALTIME_EVENT_RETENTION_HOURS"]
    return _delete_older_than(RealtimeEvent, timezone.now() - timedelta(hours=hours), batch_size)


@shared_task
def prune_early_statuses(batch_size: int = 10_000) -> int:
    """Statuses whose provider id no send stored within a day never will be (receipts for
    events we do not keep, sends that failed before the provider's answer)."""
    return _delete_older_than(EarlyStatus, timezone.now() - timedelta(days=1), batch_size)


def _delete_older_than(model, cutoff, batch_size: int) -> int:
    deleted = 0
    while True:
        ids = list(
            model.objects.filter(created_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += model.objects.filter(pk__in=ids).delete()[0]


@shared_task(acks_late=True)
def retry_attachment_download(attachment_id: int, manual: bool = False) -> str:
    """Fetch a placeholder attachment's media once more. Safe to run twice: a stored one is
    skipped, and only the first of two concurrent successes fills it in."""
    attachment = attachments.failed_attachment(attachment_id)
    if attachment is None:
        return "skipped"
    try:
        data, mime_type = fetch_attachment(attachment)
    except MediaFetchError as exc:
        attachments.record_download_failure(attachment_id, exc.reason, automatic=not manual)
        return "failed"
    return "stored" if attachments.record_download(attachment_id, data, mime_type) else "skipped"


# --- the webhook log (communications/webhooks.py) --------------------------------------------


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def process_webhook_deliveries() -> int:
    """Drain the webhook log in batches. Safe to run twice: claims are leased rows."""
    from . import webhooks

    return webhooks.drain()


@shared_task
def sweep_webhook_deliveries() -> int:
    """Beat: drain what no kick reached (broker was down, a killed worker's lease ran out)."""
    from . import webhooks

    return webhooks.drain()


@shared_task
def prune_webhook_deliveries() -> int:
    from . import webhooks

    return webhooks.prune()


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def make_thumbnail(attachment_id: int) -> str:
    """Render a PDF's first page as the attachment's preview. Safe to run twice."""
    from .models import Attachment
    from .services.attachments import record_thumbnail
    from .thumbnails import MAX_SOURCE_BYTES, render_pdf_first_page

    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None or attachment.thumbnail or not attachment.file:
        return "skipped"
    if attachment.size > MAX_SOURCE_BYTES:
        return "too large"
    try:
        png = render_pdf_first_page(attachment.file.path)
    except (ValueError, OSError) as exc:
        logger.info("no preview for attachment %s: %s", attachment_id, exc)
        return "not renderable"
    return "stored" if record_thumbnail(attachment_id, png) else "skipped"


# --- participant info (R12, communications/services/profiles.py) -----------------------------


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def refresh_profile(identity_id: int, attempt: int = 0) -> str:
    """Fetch one contact identity's name and picture from its platform and store them. Safe to
    run twice. The message that brought the identity is stored already: no failure here can
    touch it."""
    from .models import ContactIdentity
    from .services import profiles

    identity = ContactIdentity.objects.select_related("channel").filter(pk=identity_id).first()
    if identity is None:
        return "skipped"
    try:
        profile = profiles.fetch(identity)
    except TemporaryDeliveryError as exc:
        if attempt + 1 >= profiles.MAX_ATTEMPTS:
            logger.warning("profile of identity %s: %s; gave up for now", identity_id, exc.reason)
            return "gave up"
        delay = profiles.retry_delay(attempt)
        logger.info("profile of identity %s: %s; retrying in %ss", identity_id, exc.reason, delay)
        refresh_profile.apply_async((identity_id, attempt + 1), countdown=delay)
        return "retrying"
    except PermanentDeliveryError as exc:
        logger.info("profile of identity %s: %s", identity_id, exc.reason)
        profiles.mark_refreshed(identity_id)
        return "failed"
    except Exception:
        # A bug, an answer of an unexpected shape, a bug, a bad answer: logged, asked again after the full age.
        logger.exception("profile of identity %s could not be fetched", identity_id)
        profiles.mark_refreshed(identity_id)
        return "failed"
    if profile is None:
        profiles.mark_refreshed(identity_id)
        return "nothing"
    return "changed" if profiles.store_profile(identity_id, profile) else "unchanged"
