"""Push tasks: the worker sends, never the request. A subscription its push service calls
gone (404/410) is deleted; 429, 5xx and no answer are retried a few times with backoff."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ..models import Message
from . import push, services
from .models import PushSubscription

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def push_inbound_messages(message_ids: list[int]) -> int:
    """Push new inbound messages to the managers whose settings ask for them; returns how many
    pushes were handed to push services."""
    messages = list(
        Message.objects.filter(pk__in=message_ids, direction=Message.Direction.INBOUND)
        .select_related("conversation__contact", "channel")
        .defer("channel__secrets")
    )
    sent = 0
    for subscription, message, count in services.inbound_recipients(messages):
        payload = services.inbound_payload(message, count)
        topic = services.topic_for(message.conversation_id)
        sent += deliver(subscription, payload, topic=topic)
    return sent


@shared_task(acks_late=True)
def push_mention(user_id: int, message_id: int) -> int:
    message = (
        Message.objects.select_related("conversation__contact", "sender_user")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return 0
    payload = services.mention_payload(message)
    sent = 0
    for subscription in PushSubscription.objects.filter(user_id=user_id, user__is_active=True):
        sent += deliver(subscription, payload)
    return sent


@shared_task(acks_late=True)
def retry_push(subscription_id: int, payload: dict, topic: str, attempt: int) -> int:
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return 0  # unsubscribed or found gone meanwhile
    return deliver(subscription, payload, topic=topic, attempt=attempt)


def deliver(subscription: PushSubscription, payload: dict, *, topic: str = "", attempt=1) -> int:
    """One push, with what its answer means for the subscription. 1 if sent, else 0."""
    try:
        outcome = push.send(subscription, payload, topic=topic)
    except push.PushUnavailable as exc:
        logger.warning("Web Push is unavailable: %s", exc)
        return 0
    now = timezone.now()
    if outcome.result == "sent":
        PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=now)
        return 1
    if outcome.result == "gone":
        logger.info("push subscription %s is gone (%s): deleted", subscription.pk, outcome.status)
        PushSubscription.objects.filter(pk=subscription.pk).delete()
        return 0
    reason = f"{outcome.status or 'no answer'}: {outcome.reason}"[:300]
    PushSubscription.objects.filter(pk=subscription.pk).update(
        last_failure_at=now, last_failure=reason
    )
    max_attempts = settings.WEBPUSH_MAX_ATTEMPTS
    if outcome.result == "retry" and attempt < max_attempts:
        if retry_push.app.conf.task_always_eager:
            # No worker to wait for (embedded mode): do not hold the request with retries.
            logger.warning("push to subscription %s failed (%s)", subscription.pk, reason)
            return 0
        delay = settings.WEBPUSH_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
        logger.info(
            "push to subscription %s failed (%s); attempt %d in %.0fs",
            subscription.pk,
            reason,
            attempt + 1,
            delay,
        )
        try:
            retry_push.apply_async(
                (subscription.pk, payload, topic, attempt + 1),
                countdown=delay,
                retry_policy=services.PUBLISH_RETRY_POLICY,
            )
        except Exception:
            logger.warning("push retry for subscription %s not queued", subscription.pk)
        return 0
    logger.warning(
        "push to subscription %s failed after %d attempt(s): %s", subscription.pk, attempt, reason
    )
    return 0
