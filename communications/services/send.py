"""The one send path: store first, deliver in a worker after commit, statuses move forward.

`send_message` stores the outbound message as pending under the caller's `client_id` (a retried
request finds the same message) and queues `deliver_message` once the transaction commits. The
task claims the message (services/delivery.py: pending → sending, one attempt at a time, in the
conversation's order), asks the channel's provider to deliver, retries temporary failures with
exponential backoff and jitter, and records a permanent failure — or an "unknown" outcome —
with a reason staff can read and retry.

Statuses: pending → sending → sent → delivered → read; sending → pending (retry later),
failed (with reason) or unknown (maybe delivered, maybe not: staff decide). Staff retry
failed and unknown messages.
"""

import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import events
from ..counts import counts_delta, state_of, views_move, with_label_ids
from ..models import Channel, Conversation, EarlyStatus, Message
from ..serializers import conversation_payload, message_payload
from .ingest import preview_text
from .mentions import record_mentions, resolve_mentions

logger = logging.getLogger(__name__)


class SendRejected(Exception):
    """The request cannot become a message; the text says why (shown as a 400/409)."""


@dataclass(frozen=True)
class SendOutcome:
    message: Message
    created: bool


# A status may only move to a later one. Unknown ranks with sending: news that the message
# arrived (the send's late answer, a receipt) upgrades it. Failed can follow pending, sending
# or sent only; unknown follows sending only (the claim's owner, or its expired lease).
STATUS_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENDING: 1,
    Message.Status.UNKNOWN: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.READ: 4,
}


def statuses_before(status: str) -> list[str]:
    if status == Message.Status.FAILED:
        return [Message.Status.PENDING, Message.Status.SENDING, Message.Status.SENT]
    if status == Message.Status.UNKNOWN:
        return [Message.Status.SENDING]
    rank = STATUS_RANK[status]
    return [s for s, r in STATUS_RANK.items() if r < rank]


def send_message(
    *,
    conversation: Conversation,
    user,
    client_id: str,
    content: str = "",
    kind: str = Message.Kind.TEXT,
    reply_to_id: int | None = None,
    attachments: tuple = (),
    email: dict | None = None,
    template: dict | None = None,
) -> SendOutcome:
    """Store an outbound message (or a private note) once per `client_id`. `email` ({"to": […],
    "cc": […]}) chooses an email reply's recipients; the provider reads it from metadata.
    `template` ({"id": …, "variables": {…}}) sends one of the channel's message templates
    (WhatsApp outside its 24-hour window): the provider checks and fills it in, and the
    message stores the filled-in text."""
    existing = Message.objects.filter(client_id=client_id).first()
    if existing is not None:
        return _same_request(existing, conversation)
    metadata = {}
    if template is not None:
        if kind == Message.Kind.NOTE or attachments:
            raise SendRejected("a template is sent on its own, not as a note or with files")
        prepared = _prepare_template(conversation, template)
        content, metadata = prepared.content, prepared.metadata
    if not content.strip() and not attachments:
        raise SendRejected("a message needs text or an attachment")
    if (
        reply_to_id is not None
        and not Message.objects.filter(pk=reply_to_id, conversation=conversation).exists()
    ):
        raise SendRejected("reply_to_id does not name a message of this conversation")
    if email and conversation.channel.kind != Channel.Kind.EMAIL:
        raise SendRejected("email recipients apply to email conversations only")
    is_note = kind == Message.Kind.NOTE
    # A note's @mentions (managers who can see the conversation) travel in its metadata.
    mentions = resolve_mentions(conversation, content, user) if is_note else []
    now = timezone.now()
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                channel_id=conversation.channel_id,
                direction=Message.Direction.OUTBOUND,
                kind=kind,
                content=content,
                status=Message.Status.SENT if is_note else Message.Status.PENDING,
                client_id=client_id,
                sender_user=user,
                reply_to_id=reply_to_id,
                metadata={"email": {"to": email["to"], "cc": email.get("cc", [])}}
                if email and not is_note
                else {**metadata, "mentions": mentions}
                if mentions
                else metadata,
                created_at=now,
                deliver_after=None if is_note else now,
            )
            for attachment in attachments:
                attachment.message = message
                attachment.save()
            message.remember_attachments(attachments)
            if not is_note:
                _touch_after_send(conversation, message)
            events.record_event(
                events.MESSAGE_CREATED,
                channel_id=conversation.channel_id,
                conversation_id=conversation.pk,
                payload=message_payload(message),
            )
            if not is_note:
                queue_delivery(message.pk)
            record_mentions(message, mentions)
    except IntegrityError:
        # Two copies of one request raced; the other one stored it.
        return _same_request(Message.objects.get(client_id=client_id), conversation)
    return SendOutcome(message, created=True)


def _prepare_template(conversation: Conversation, template: dict):
    from ..providers import PermanentDeliveryError, TemplateRejected, provider_for

    try:
        provider = provider_for(conversation.channel)
    except PermanentDeliveryError as exc:
        raise SendRejected(exc.reason) from exc
    prepare = getattr(provider, "prepare_template", None)
    if prepare is None:
        raise SendRejected(
            f"{conversation.channel.get_kind_display()} conversations have no message templates"
        )
    try:
        return prepare(conversation, template)
    except TemplateRejected as exc:
        raise SendRejected(str(exc)) from exc


def _same_request(existing: Message, conversation: Conversation) -> SendOutcome:
    if existing.conversation_id != conversation.pk:
        raise SendRejected("client_id was already used for a message in another conversation")
    return SendOutcome(existing, created=False)


def _touch_after_send(conversation: Conversation, message: Message) -> None:
    # Replying means the manager has read the thread. The payload comes from the row as it is
    # (read under its lock), not from the caller's older copy; its state before the UPDATE
    # gives the counts' delta (an unread conversation is read now).
    current = (
        with_label_ids(Conversation.objects.select_for_update(of=("self",)))
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
        .get(pk=conversation.pk)
    )
    before = state_of(current)
    changes = {
        "last_message_at": message.created_at,
        "last_message_preview": preview_text(message),
        # An automatic reply (no sender) leaves the customer's message unread for the team.
        "unread_count": 0 if message.sender_user_id is not None else current.unread_count,
        "updated_at": timezone.now(),
    }
    Conversation.objects.filter(pk=conversation.pk).update(**changes, version=F("version") + 1)
    changes["version"] = current.version + 1  # under our lock: exactly what the UPDATE wrote
    for name, value in changes.items():
        setattr(current, name, value)
        setattr(conversation, name, value)
    events.record_event(
        events.CONVERSATION_UPDATED,
        channel_id=conversation.channel_id,
        conversation_id=conversation.pk,
        payload=conversation_payload(current),
        counts=counts_delta(before, state_of(current)),
        views=views_move(before, state_of(current), current.pk),
    )


# Publishing to a broker that is down gives up after ~0.5 s instead of holding the request.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def queue_delivery(message_id: int, *, countdown: float = 0) -> None:
    """Queue `deliver_message` once the caller's transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _publish_delivery(message_id, countdown))


def _publish_delivery(message_id: int, countdown: float) -> bool:
    """The message is stored either way: with the broker down the request still answers,
    and the sweeper (tasks.sweep_outbound) queues it once the broker is back."""
    from ..tasks import deliver_message

    try:
        deliver_message.apply_async(
            (message_id,), countdown=countdown, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, …
        logger.warning(
            "message %s stored but not queued (%s: %s); the sweeper will queue it",
            message_id,
            exc.__class__.__name__,
            exc,
        )
        return False
    return True


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: base·2^(n-1), somewhere in its upper half."""
    base = settings.SWITCHBOARD["SEND_RETRY_BASE_SECONDS"] * (2 ** max(attempt - 1, 0))
    return min(base, 600) * random.uniform(0.5, 1.0)


RETRYABLE_STATUSES = [Message.Status.FAILED, Message.Status.UNKNOWN]


def retry_failed_message(message: Message) -> bool:
    """Staff's "retry": a failed or unknown outbound message goes back to pending and is
    queued again, with a fresh round of attempts. For an unknown one this is the deliberate
    resend the send path would not make on its own (it may arrive twice where the platform
    has no idempotency key; the API channel's callback repeats its Idempotency-Key)."""
    now = timezone.now()
    with transaction.atomic():
        updated = Message.objects.filter(
            pk=message.pk, direction=Message.Direction.OUTBOUND, status__in=RETRYABLE_STATUSES
        ).update(
            status=Message.Status.PENDING,
            failure_reason="",
            send_attempts=0,
            send_attempt_id=None,
            lease_until=None,
            deliver_after=now,
            version=F("version") + 1,
            updated_at=now,
        )
        if not updated:
            return False
        message.refresh_from_db()
        _record_message_updated(message)
        queue_delivery(message.pk)
    return True


def update_message_status(
    message_id: int,
    status: str,
    *,
    reason: str = "",
    external_id: str | None = None,
    attempt_id=None,
) -> bool:
    """Move a message's delivery status forward; an older or repeated status changes nothing.

    With `external_id` (the provider's answer to a send) the id is stored, and statuses that
    named it before it was known are applied. With `attempt_id` only the delivery attempt
    that holds the claim can make the change (an attempt whose lease ran out cannot)."""
    values = {
        "status": status,
        "version": F("version") + 1,
        "updated_at": timezone.now(),
        "lease_until": None,
    }
    if status in (Message.Status.FAILED, Message.Status.UNKNOWN):
        values["failure_reason"] = reason[:2000] or "the provider reported a failure"
    elif status == Message.Status.SENT:
        values["failure_reason"] = ""
    if external_id:
        values["external_id"] = external_id
    rows = Message.objects.filter(pk=message_id, status__in=statuses_before(status))
    if attempt_id is not None:
        rows = rows.filter(send_attempt_id=attempt_id)
    with transaction.atomic():
        updated = rows.update(**values)
        if updated:
            message = Message.objects.select_related("sender_user").get(pk=message_id)
            _record_message_updated(message)
    if updated and external_id:
        transaction.on_commit(
            lambda: _apply_early_statuses(message.channel_id, external_id, message_id)
        )
    return bool(updated)


def update_status_by_external_id(channel_id: int, external_id: str, status: str, reason: str = ""):
    """Status webhooks and receipts name the provider's id, not ours.

    A status may overtake the send's own answer (Meta's webhook, the bridge's receipt): an id
    not stored yet is kept as an EarlyStatus, which the send applies when it stores the id."""
    if not external_id:
        return False
    message_id = _message_id_for(channel_id, external_id)
    if message_id is not None:
        return update_message_status(message_id, status, reason=reason)
    EarlyStatus.objects.bulk_create(
        [EarlyStatus(channel_id=channel_id, external_id=external_id, status=status, reason=reason)],
        ignore_conflicts=True,
    )
    # The send may store the id between our look and our write: once ours is committed, look
    # again (the send looks for early statuses only after its own commit).
    transaction.on_commit(lambda: _apply_early_statuses(channel_id, external_id))
    return False


def _message_id_for(channel_id: int, external_id: str) -> int | None:
    """The message a provider id names. A pending (or sending) message still carrying an id is
    being sent again after a failure: late news of the old attempt (a bridge's "not bridged"
    notice after its failure status) must not fail the new one."""
    return (
        Message.objects.filter(channel_id=channel_id, external_id=external_id)
        .exclude(status__in=[Message.Status.PENDING, Message.Status.SENDING])
        .values_list("id", flat=True)
        .first()
    )


def _apply_early_statuses(channel_id: int, external_id: str, message_id: int | None = None) -> bool:
    message_id = message_id or _message_id_for(channel_id, external_id)
    if message_id is None:
        return False
    waiting = EarlyStatus.objects.filter(channel_id=channel_id, external_id=external_id)
    if not waiting.exists():  # every send asks: one read, no transaction, in the usual case
        return False
    with transaction.atomic():
        early = list(waiting.select_for_update())
        if not early:
            return False
        EarlyStatus.objects.filter(pk__in=[e.pk for e in early]).delete()
        changed = False
        for status in sorted(early, key=lambda e: STATUS_RANK.get(e.status, len(STATUS_RANK))):
            changed |= update_message_status(message_id, status.status, reason=status.reason)
    return changed


def _record_message_updated(message: Message) -> None:
    events.record_event(
        events.MESSAGE_UPDATED,
        channel_id=message.channel_id,
        conversation_id=message.conversation_id,
        payload=message_payload(message),
    )
