"""The one ingest path: every inbound message of every channel ends here.

Providers translate their payloads into `InboundMessage`s and call `ingest_messages`. Each
message is stored in its own transaction, race-free by database constraints:

- the contact identity and the conversation are created inside a savepoint and, when a
  concurrent delivery won the unique constraint, the winner's row is read instead;
- the conversation row is then locked, which serialises every ingest into one conversation,
  so the dedup checks below cannot be raced, and the unique indexes back them up;
- dedup layers: the provider's message id; else sender + provider timestamp + text (a unique
  key); else the same text from the same sender within a short window (checked under the lock).

Realtime events are recorded in the same transaction and broadcast after commit.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Contact

from .. import events
from ..models import Attachment, Channel, ContactIdentity, Conversation, Message
from ..serializers import conversation_payload, message_payload

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundSender:
    external_id: str
    name: str = ""
    username: str = ""
    phone: str = ""
    email: str = ""
    avatar_url: str = ""


@dataclass(frozen=True)
class InboundAttachment:
    mime_type: str
    filename: str = ""
    data: bytes | None = None  # downloaded by the provider before ingest
    provider_ref: str = ""
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A provider's message, translated. `conversation_external_id` defaults to the sender."""

    sender: InboundSender
    content: str = ""
    kind: str = Message.Kind.TEXT
    external_id: str | None = None
    conversation_external_id: str = ""
    subject: str = ""
    timestamp: datetime | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    reply_to_external_id: str | None = None
    # "out" for messages the business sent from elsewhere (a phone, an echo): stored as sent.
    direction: str = Message.Direction.INBOUND
    metadata: dict = field(default_factory=dict)
    # History import (a backfill): stored and announced like any message, but it neither
    # counts as unread nor reopens the conversation, nor replaces a newer message's preview.
    historical: bool = False


@dataclass(frozen=True)
class IngestResult:
    message: Message
    created: bool
    conversation_created: bool


def ingest_messages(channel: Channel, inbound: list[InboundMessage]) -> list[IngestResult]:
    """Store each message once; return what was stored (or found) for each, in order."""
    return [ingest_message(channel, item) for item in inbound]


def ingest_message(channel: Channel, item: InboundMessage) -> IngestResult:
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _ingest_one(channel, item)
        except IntegrityError:
            # A concurrent delivery of the same message committed between our checks and our
            # insert (possible only across conversations): read it back on the next pass.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ingest_one(channel: Channel, item: InboundMessage) -> IngestResult:
    contact = _contact_for(channel, item.sender)
    chat_id = item.conversation_external_id or item.sender.external_id
    conversation, conversation_created = _locked_conversation(channel, chat_id, contact, item)

    duplicate = _find_duplicate(channel, conversation, contact, item)
    if duplicate is not None:
        return IngestResult(duplicate, created=False, conversation_created=False)

    now = timezone.now()
    created_at = item.timestamp if item.timestamp and item.timestamp <= now else now
    outbound = item.direction == Message.Direction.OUTBOUND
    reply_to_id = None
    if item.reply_to_external_id:
        reply_to_id = (
            Message.objects.filter(channel=channel, external_id=item.reply_to_external_id)
            .values_list("id", flat=True)
            .first()
        )
    message = Message.objects.create(
        conversation=conversation,
        channel=channel,
        direction=item.direction,
        kind=item.kind,
        content=item.content,
        status=Message.Status.SENT if outbound else Message.Status.RECEIVED,
        external_id=item.external_id or None,
        dedup_key=_dedup_key(item),
        sender_contact=None if outbound else contact,
        reply_to_id=reply_to_id,
        metadata=item.metadata,
        provider_timestamp=item.timestamp,
        created_at=created_at,
    )
    stored = _store_attachments(message, item.attachments) if item.attachments else []
    message.remember_attachments(stored)

    _touch_conversation(conversation, message, inbound=not outbound, historical=item.historical)
    if conversation_created:
        events.record_event(
            events.CONVERSATION_CREATED,
            channel_id=channel.pk,
            conversation_id=conversation.pk,
            payload=conversation_payload(conversation),
        )
    else:
        events.record_event(
            events.CONVERSATION_UPDATED,
            channel_id=channel.pk,
            conversation_id=conversation.pk,
            payload=conversation_payload(conversation),
        )
    events.record_event(
        events.MESSAGE_CREATED,
        channel_id=channel.pk,
        conversation_id=conversation.pk,
        payload=message_payload(message),
    )
    return IngestResult(message, created=True, conversation_created=conversation_created)


def _contact_for(channel: Channel, sender: InboundSender) -> Contact:
    identity = (
        ContactIdentity.objects.select_related("contact")
        .filter(channel=channel, external_id=sender.external_id)
        .first()
    )
    if identity is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(
                    name=sender.name,
                    username=sender.username,
                    phone=sender.phone,
                    email=sender.email,
                    avatar_url=sender.avatar_url,
                )
                ContactIdentity.objects.create(
                    channel=channel,
                    contact=contact,
                    external_id=sender.external_id,
                    display_name=sender.name,
                    username=sender.username,
                    avatar_url=sender.avatar_url,
                )
                return contact
        except IntegrityError:
            identity = ContactIdentity.objects.select_related("contact").get(
                channel=channel, external_id=sender.external_id
            )
    _fill_missing_contact_details(identity.contact, sender)
    return identity.contact


def _fill_missing_contact_details(contact: Contact, sender: InboundSender) -> None:
    """A phone or name learnt later (a LID contact's number, say) completes the contact."""
    updates = {}
    for field_name in ("name", "phone", "email", "username", "avatar_url"):
        value = getattr(sender, field_name)
        if value and not getattr(contact, field_name):
            updates[field_name] = value
    if updates:
        Contact.objects.filter(pk=contact.pk).update(**updates, updated_at=timezone.now())
        for key, value in updates.items():
            setattr(contact, key, value)


def _locked_conversation(
    channel: Channel, chat_id: str, contact: Contact, item: InboundMessage
) -> tuple[Conversation, bool]:
    locked = Conversation.objects.select_for_update().select_related("contact", "channel")
    conversation = locked.filter(channel=channel, external_id=chat_id).first()
    if conversation is not None:
        return conversation, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                channel=channel, contact=contact, external_id=chat_id, subject=item.subject[:255]
            )
            return conversation, True
    except IntegrityError:
        return locked.get(channel=channel, external_id=chat_id), False


def _dedup_key(item: InboundMessage) -> str | None:
    """Sender + provider timestamp + text, for sources that give no message id.

    With neither id nor timestamp there is no key: the window check in `_find_duplicate`,
    made under the conversation's row lock, is what keeps a redelivery out.
    """
    if item.external_id or item.timestamp is None:
        return None
    parts = [item.sender.external_id, item.kind, item.content, item.timestamp.isoformat()]
    return "ts:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _find_duplicate(
    channel: Channel, conversation: Conversation, contact: Contact, item: InboundMessage
) -> Message | None:
    if item.external_id:
        return Message.objects.filter(channel=channel, external_id=item.external_id).first()
    if item.timestamp is not None:
        return Message.objects.filter(channel=channel, dedup_key=_dedup_key(item)).first()
    window = settings.SWITCHBOARD["CONTENT_DEDUP_WINDOW_SECONDS"]
    return (
        Message.objects.filter(
            conversation=conversation,
            direction=item.direction,
            sender_contact=contact if item.direction == Message.Direction.INBOUND else None,
            kind=item.kind,
            content=item.content,
            created_at__gte=timezone.now() - timedelta(seconds=window),
        )
        .order_by("-created_at")
        .first()
    )


def _store_attachments(
    message: Message, attachments: tuple[InboundAttachment, ...]
) -> list[Attachment]:
    stored = []
    for index, inbound in enumerate(attachments):
        attachment = Attachment(
            message=message,
            filename=inbound.filename or f"attachment-{message.pk}-{index}",
            mime_type=inbound.mime_type,
            provider_ref=inbound.provider_ref,
            width=inbound.width,
            height=inbound.height,
            duration_ms=inbound.duration_ms,
        )
        if inbound.data is not None:
            attachment.size = len(inbound.data)
            attachment.file.save(attachment.filename, ContentFile(inbound.data), save=False)
        attachment.save()
        stored.append(attachment)
    return stored


def _touch_conversation(
    conversation: Conversation, message: Message, *, inbound: bool, historical: bool = False
) -> None:
    conversation.last_message_at = max(conversation.last_message_at, message.created_at)
    fields = ["last_message_at", "updated_at"]
    if historical:
        newer = Message.objects.filter(
            conversation=conversation, created_at__gt=message.created_at
        ).exists()
        if not newer:
            conversation.last_message_preview = preview_text(message)
            fields.append("last_message_preview")
        if inbound and (
            conversation.last_inbound_at is None
            or conversation.last_inbound_at < message.created_at
        ):
            conversation.last_inbound_at = message.created_at
            fields.append("last_inbound_at")
        conversation.save(update_fields=fields)
        return
    conversation.last_message_preview = preview_text(message)
    fields.append("last_message_preview")
    if inbound:
        conversation.unread_count += 1
        conversation.last_inbound_at = message.created_at
        fields += ["unread_count", "last_inbound_at"]
        if conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
            conversation.status = Conversation.Status.OPEN
            conversation.snoozed_until = None
            fields += ["status", "snoozed_until"]
    conversation.save(update_fields=fields)


def preview_text(message: Message) -> str:
    if message.content:
        return message.content[:200]
    return f"[{message.get_kind_display()}]"
