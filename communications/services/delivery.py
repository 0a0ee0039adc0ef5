"""Handing one outbound message to its provider: a claim, in the conversation's order.

Why a claim: the task runs with acks_late (a worker that dies mid-task gets its task run
again) and the sweeper re-queues messages whose task never ran, so one message may have two
tasks. Only the task whose conditional UPDATE moves it pending → sending (with a fresh
attempt id and a lease) calls the provider; every later write of that attempt names its
attempt id, so an attempt that lost its claim changes nothing.

A claim whose lease ran out means a worker died (or hung) between taking the message and
recording the provider's answer: the platform may have it. A provider whose resend is safe
(Matrix: the transaction id) sends again; any other gets "unknown" with a reason, and staff
retry it deliberately (services/send.retry_failed_message).

Order: a message is claimed only while no earlier outbound message of its conversation is
pending or sending (a failed or unknown one does not hold the rest back). When a message
settles, the next one of its conversation is queued at once.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from ..models import Message
from .send import queue_delivery, retry_delay, update_message_status

logger = logging.getLogger(__name__)

IN_FLIGHT = [Message.Status.PENDING, Message.Status.SENDING]


def _setting(name: str) -> float:
    return settings.SWITCHBOARD[name]


def earlier_in_flight() -> Exists:
    """An earlier outbound message of the same conversation is still pending or sending."""
    return Exists(
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"),
            direction=Message.Direction.OUTBOUND,
            status__in=IN_FLIGHT,
            id__lt=OuterRef("id"),
        )
    )


@dataclass(frozen=True)
class Claim:
    message: Message
    attempt_id: uuid.UUID
    attempt: int


def claim(message_id: int) -> Claim | None:
    """Take a pending message for one delivery attempt, or None (someone else has it, it is
    settled, or an earlier message of its conversation goes first)."""
    attempt_id = uuid.uuid4()
    now = timezone.now()
    taken = (
        Message.objects.filter(pk=message_id, status=Message.Status.PENDING)
        .exclude(earlier_in_flight())
        .update(
            status=Message.Status.SENDING,
            send_attempt_id=attempt_id,
            lease_until=now + timedelta(seconds=_setting("SEND_LEASE_SECONDS")),
            send_attempts=F("send_attempts") + 1,
            version=F("version") + 1,
            updated_at=now,
        )
    )
    if not taken:
        return None
    message = Message.objects.select_related(
        "conversation", "channel", "conversation__contact"
    ).get(pk=message_id)
    return Claim(message, attempt_id, message.send_attempts)


def settle(claim_: Claim, status: str, *, reason: str = "", external_id: str | None = None):
    """Record the attempt's outcome (sent, failed or unknown) and queue the next message."""
    message_id = claim_.message.pk
    done = update_message_status(
        message_id, status, reason=reason, external_id=external_id, attempt_id=claim_.attempt_id
    )
    if not done and status == Message.Status.SENT:
        # Our lease ran out meanwhile (the message may be "unknown" now), or the provider
        # recorded it itself: news that it arrived is worth keeping either way.
        update_message_status(message_id, status, external_id=external_id)
    queue_next(claim_.message.conversation_id)


def release_for_retry(
    claim_: Claim, reason: str, *, not_before: float | None = None
) -> float | None:
    """A temporary failure: back to pending, due after a backoff (at least `not_before`
    seconds, when the platform named a wait, up to the same 600 s ceiling as the backoff: a
    task queued further ahead outlives the broker's visibility timeout); the delay, or None when
    the claim was no longer ours."""
    delay = max(retry_delay(claim_.attempt), min(not_before or 0, 600))
    released = Message.objects.filter(
        pk=claim_.message.pk, status=Message.Status.SENDING, send_attempt_id=claim_.attempt_id
    ).update(
        status=Message.Status.PENDING,
        send_attempt_id=None,
        lease_until=None,
        deliver_after=timezone.now() + timedelta(seconds=delay),
        failure_reason=f"retrying: {reason}"[:2000],
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    return delay if released else None


def queue_next(conversation_id: int) -> int | None:
    """Queue the conversation's first pending outbound message if it is due (one in backoff
    has its own timer). Its own task may still be queued: the claim makes that harmless."""
    head = (
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Message.Direction.OUTBOUND,
            status__in=IN_FLIGHT,
        )
        .order_by("id")
        .values("id", "status", "deliver_after")
        .first()
    )
    if head is None or head["status"] != Message.Status.PENDING:
        return None
    if head["deliver_after"] and head["deliver_after"] > timezone.now():
        return None
    queue_delivery(head["id"])
    return head["id"]


def settle_expired_claim(message: Message, *, resend_is_safe: bool) -> str:
    """A claim whose lease ran out: resend where that is safe, otherwise "unknown"."""
    expired = Message.objects.filter(
        pk=message.pk, status=Message.Status.SENDING, lease_until__lt=timezone.now()
    )
    if resend_is_safe:
        if expired.update(
            status=Message.Status.PENDING,
            send_attempt_id=None,
            lease_until=None,
            deliver_after=timezone.now(),
            version=F("version") + 1,
            updated_at=timezone.now(),
        ):
            return "resend"
        return "not expired"
    reason = (
        "the worker stopped while handing this message to the platform, so it may or may not "
        "have arrived; check with the customer or retry (it could arrive twice)"
    )
    # Only the expired attempt is settled: its id never gets a new lease.
    stale_attempt = expired.values_list("send_attempt_id", flat=True).first()
    if stale_attempt is None or not update_message_status(
        message.pk, Message.Status.UNKNOWN, reason=reason, attempt_id=stale_attempt
    ):
        return "not expired"
    queue_next(message.conversation_id)
    return "unknown"


# --- the sweeper: nothing stays pending or sending for good ----------------------------------


def stuck_pending():
    """Pending messages due more than SEND_STUCK_AFTER_SECONDS ago that are first in their
    conversation's line: their task never ran (broker down at commit, task lost)."""
    cutoff = timezone.now() - timedelta(seconds=_setting("SEND_STUCK_AFTER_SECONDS"))
    return Message.objects.filter(
        Q(deliver_after__lt=cutoff) | Q(deliver_after__isnull=True, created_at__lt=cutoff),
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.PENDING,
    ).exclude(earlier_in_flight())


def expired_claims():
    return Message.objects.filter(
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.SENDING,
        lease_until__lt=timezone.now(),
    )


def stuck_outbound_counts() -> dict:
    """For /health/: messages the sweeper would act on now, and those waiting for staff."""
    return {
        "stuck_pending": stuck_pending().count(),
        "expired_claims": expired_claims().count(),
        "unknown": Message.objects.filter(
            direction=Message.Direction.OUTBOUND, status=Message.Status.UNKNOWN
        ).count(),
    }


def outbound_health() -> dict:
    """/health/'s "outbound" entry: "stale" while messages are stuck (the sweeper is not
    running, or the broker is down), with the counts; unknown ones only inform."""
    counts = stuck_outbound_counts()
    stuck = counts["stuck_pending"] + counts["expired_claims"]
    return {"status": "stale" if stuck else "ok", "stuck": stuck, **counts}
