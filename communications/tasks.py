"""Celery tasks: thin wrappers that pass ids and call services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from .models import EarlyStatus, Message, RealtimeEvent
from .providers import PermanentDeliveryError, TemporaryDeliveryError, provider_for
from .services.send import queue_delivery, retry_delay, update_message_status

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_KEY = "switchboard:worker-heartbeat"


@shared_task(acks_late=True)
def deliver_message(message_id: int) -> str:
    """Hand one pending outbound message to its provider. Safe to run twice."""
    message = (
        Message.objects.select_related("conversation", "channel", "conversation__contact")
        .filter(pk=message_id)
        .first()
    )
    if message is None or message.status != Message.Status.PENDING:
        return "skipped"
    Message.objects.filter(pk=message_id).update(send_attempts=F("send_attempts") + 1)
    attempt = message.send_attempts + 1
    try:
        result = provider_for(message.channel).send(message)
    except PermanentDeliveryError as exc:
        update_message_status(message_id, Message.Status.FAILED, reason=exc.reason)
        return "failed"
    except TemporaryDeliveryError as exc:
        if attempt > settings.SWITCHBOARD["SEND_MAX_RETRIES"]:
            update_message_status(
                message_id,
                Message.Status.FAILED,
                reason=f"{exc.reason} (gave up after {attempt} attempts)",
            )
            return "failed"
        delay = retry_delay(attempt)
        logger.warning("message %s: %s; retrying in %.1fs", message_id, exc.reason, delay)
        if deliver_message.app.conf.task_always_eager:
            # Without a worker there is nobody to wait for: try again now, bounded by attempts.
            return deliver_message(message_id)
        queue_delivery(message_id, countdown=delay)
        return "retrying"
    update_message_status(message_id, Message.Status.SENT, external_id=result.external_id)
    return "sent"


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
