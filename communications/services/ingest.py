"""The one ingest path: every inbound message of every channel ends here.

Providers translate their payloads into `InboundMessage`s and call `ingest_messages`. A batch
is one transaction with a fixed number of statements, race-free by database constraints:

- new contact identities and conversations are inserted with ON CONFLICT DO NOTHING and,
  where a concurrent delivery won the unique constraint, the winner's row is read instead;
- the conversation rows are locked, which serialises every ingest into one conversation,
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
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from crm.bulk_sql import delete_rows, insert_new_rows, insert_rows, update_rows
from crm.models import Contact

from .. import events
from ..counts import counts_delta, state_of, views_move, with_label_ids
from ..files import store_after_commit
from ..models import Attachment, Channel, ContactIdentity, Conversation, Message
from ..notifications.services import notify_inbound_messages
from ..serializers import conversation_payload, message_payload
from . import profiles
from .assignment import auto_assign_new_conversations
from .attachments import queue_download_retry
from .coalesce import Coalescer

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
    # Why the provider could not fetch the bytes: stored as a placeholder, retried later.
    download_error: str = ""
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
    """Store each message once; return what was stored (or found) for each, in order.

    A batch is one transaction with a fixed number of statements, however many messages and
    conversations it holds: floods arrive in batches and are absorbed at a thousand and more
    per second per process. Should the batch collide with a concurrent one (a unique constraint, a deadlock),
    each message is retried on its own.
    """
    if not inbound:
        return []
    try:
        with transaction.atomic():
            return _ingest_batch(channel, inbound)
    except (IntegrityError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and not _is_retryable(exc):
            raise
        if len(inbound) == 1:
            return [_ingest_alone(channel, inbound[0])]
        logger.info("ingest batch of %d collided (%s); one by one", len(inbound), exc)
        return [_ingest_alone(channel, item) for item in inbound]


def ingest_message(channel: Channel, item: InboundMessage) -> IngestResult:
    """One message, as a webhook delivers it. Concurrent calls for the same channel in this
    process share one batch (see coalesce.py): a flood of single-message webhooks costs what
    batched deliveries cost. Inside the caller's transaction it runs alone, in that transaction.
    """
    if transaction.get_connection().in_atomic_block:
        return ingest_messages(channel, [item])[0]
    return _concurrent_single_messages.call(channel.pk, channel, item)


def _give_back_the_connection() -> None:
    """A caller waiting for another's batch needs no database connection meanwhile. Under a
    flood hundreds of requests wait at once, more than the pool holds: each waiter returns its
    pooled connection (no transaction is open, see `ingest_message`) and takes one again when
    it next queries."""
    connection = transaction.get_connection()
    if getattr(connection, "pool", None) and not connection.in_atomic_block:
        connection.close()


_concurrent_single_messages = Coalescer(ingest_messages, before_waiting=_give_back_the_connection)


def _ingest_alone(channel: Channel, item: InboundMessage) -> IngestResult:
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _ingest_batch(channel, [item])[0]
        except (IntegrityError, OperationalError) as exc:
            # A concurrent delivery committed between our reads and our insert: the next pass
            # reads what it stored.
            if attempt == 2 or (isinstance(exc, OperationalError) and not _is_retryable(exc)):
                raise
    raise AssertionError("unreachable")


def _is_retryable(exc: OperationalError) -> bool:
    # PostgreSQL: deadlock_detected, serialization_failure.
    return getattr(exc.__cause__, "sqlstate", None) in ("40P01", "40001")


def _chat_id(item: InboundMessage) -> str:
    return item.conversation_external_id or item.sender.external_id


def _ingest_batch(channel: Channel, items: list[InboundMessage]) -> list[IngestResult]:
    contacts = _contacts_for(channel, items)
    conversations, created_chats = _locked_conversations(channel, items, contacts)
    # What the counts saw before this batch (a new chat: nothing), for the events' deltas.
    before = {
        c.pk: state_of(c) for chat_id, c in conversations.items() if chat_id not in created_chats
    }
    duplicates = _DuplicateFinder(channel, items)
    reply_ids = _reply_targets(channel, items)

    results: list[IngestResult | None] = [None] * len(items)
    new: list[tuple[int, InboundMessage, Message]] = []
    now = timezone.now()
    for index, item in enumerate(items):
        conversation = conversations[_chat_id(item)]
        contact = contacts[item.sender.external_id]
        duplicate = duplicates.find(item, conversation, contact)
        if duplicate is not None:
            results[index] = IngestResult(duplicate, created=False, conversation_created=False)
            continue
        outbound = item.direction == Message.Direction.OUTBOUND
        message = Message(
            conversation=conversation,
            channel=channel,
            direction=item.direction,
            kind=item.kind,
            content=item.content,
            status=Message.Status.SENT if outbound else Message.Status.RECEIVED,
            external_id=item.external_id or None,
            dedup_key=_dedup_key(item),
            sender_contact=None if outbound else contact,
            reply_to_id=reply_ids.get(item.reply_to_external_id),
            metadata=item.metadata,
            provider_timestamp=item.timestamp,
            created_at=item.timestamp if item.timestamp and item.timestamp <= now else now,
            updated_at=now,
        )
        duplicates.remember(item, message)
        new.append((index, item, message))
    if not new:
        return results

    insert_rows([message for _, _, message in new])
    _link_replies_within_batch(new)
    touched: dict[int, Conversation] = {}
    message_events = []
    for index, item, message in new:
        stored = _store_attachments(message, item.attachments) if item.attachments else []
        message.remember_attachments(stored)
        conversation = message.conversation
        _apply_to_conversation(conversation, message, historical=item.historical)
        touched[conversation.pk] = conversation
        first_of_new_chat = _chat_id(item) in created_chats
        created_chats.discard(_chat_id(item))
        results[index] = IngestResult(message, True, conversation_created=first_of_new_chat)
        message_events.append(
            (
                events.MESSAGE_CREATED,
                conversation.channel_id,  # a merged chat's survivor may be on another channel
                conversation.pk,
                message_payload(message),
            )
        )
    new_conversation_ids = {
        r.message.conversation_id for r in results if r and r.conversation_created
    }
    # New conversations a customer started get a manager where the channel auto-assigns
    # (under the team's locks); a history import or the business's own first message does not.
    customer_wrote = {
        message.conversation_id
        for _, item, message in new
        if item.direction == Message.Direction.INBOUND and not item.historical
    }
    assignment_lines: list[tuple] = []
    assigned = auto_assign_new_conversations(
        channel,
        [c for c in touched.values() if c.pk in new_conversation_ids and c.pk in customer_wrote],
        activity_events=assignment_lines,
    )
    # One UPDATE for every conversation the batch touched (they are locked by us).
    update_rows(
        list(touched.values()),
        _CONVERSATION_FIELDS + ["assignee", "team"] if assigned else _CONVERSATION_FIELDS,
    )
    conversation_events = []
    for conversation in touched.values():
        kind = (
            events.CONVERSATION_CREATED
            if conversation.pk in new_conversation_ids
            else events.CONVERSATION_UPDATED
        )
        was, now = before.get(conversation.pk), state_of(conversation)
        conversation_events.append(
            (
                kind,
                conversation.channel_id,  # a merged chat's survivor may be elsewhere
                conversation.pk,
                conversation_payload(conversation),
                counts_delta(was, now),
                # A new chat has no labels; a locked one's were read with its row: no query.
                views_move(was, now, None if was is None else conversation.pk),
            )
        )
    # Conversations first, so a page learns of a new row before the messages in it.
    events.record_events(conversation_events + assignment_lines + message_events)
    # Web Push to the managers who asked for it, by the worker after commit.
    notify_inbound_messages(
        [
            message.pk
            for _, item, message in new
            if message.direction == Message.Direction.INBOUND and not item.historical
        ]
    )
    if channel.business_hours.get("away_reply"):
        _queue_away_replies(channel, new)
    return results


def _queue_away_replies(channel: Channel, new: list[tuple[int, InboundMessage, Message]]) -> None:
    """Outside the channel's business hours a customer's message gets the automatic reply,
    once per conversation per closed period (tasks.send_away_replies, through the send path).
    Costs nothing on channels without one: the channel row says."""
    conversation_ids = sorted(
        {
            message.conversation_id
            for _, item, message in new
            if item.direction == Message.Direction.INBOUND and not item.historical
        }
    )
    if conversation_ids:
        from ..tasks import send_away_replies

        transaction.on_commit(lambda: send_away_replies.delay(channel.pk, conversation_ids))


# What a new message changes in its conversation (see `_apply_to_conversation`).
_CONVERSATION_FIELDS = [
    "last_message_at",
    "last_message_preview",
    "last_inbound_at",
    "unread_count",
    "status",
    "snoozed_until",
    "updated_at",
]


def _contacts_for(channel: Channel, items: list[InboundMessage]) -> dict[str, Contact]:
    """One contact per sender id: known identities in one query, new customers in two more
    statements for the whole batch (see `_new_contacts`)."""
    senders: dict[str, InboundSender] = {}
    for item in items:
        senders.setdefault(item.sender.external_id, item.sender)
    identities = list(
        ContactIdentity.objects.select_related("contact").filter(
            channel=channel, external_id__in=list(senders)
        )
    )
    contacts = {identity.external_id: identity.contact for identity in identities}
    unknown = [sender for sender_id, sender in senders.items() if sender_id not in contacts]
    if unknown:
        made = _new_contacts(channel, unknown)
        identities += made
        contacts |= {identity.external_id: identity.contact for identity in made}
    # Names and pictures come from the platform in the background (R12): new identities and
    # stale profiles are queued after commit, decided from the rows read above.
    profiles.queue_refreshes(channel, identities)
    for item in items:
        # Later messages may know more (a LID contact's phone): complete the contact.
        _fill_missing_contact_details(contacts[item.sender.external_id], item.sender)
    return contacts


def _new_contacts(channel: Channel, senders: list[InboundSender]) -> list[ContactIdentity]:
    """A contact and an identity for each new customer, race-free: the identities' unique
    constraint decides. Where a concurrent delivery created the identity first, its contact is
    used and the one made here (referenced by nothing, uncommitted) is deleted again. Returns
    the identities, each with its contact."""
    senders = sorted(senders, key=lambda s: s.external_id)  # one lock order for all batches
    made = {
        s.external_id: Contact(
            name=s.name, username=s.username, phone=s.phone, email=s.email, avatar_url=s.avatar_url
        )
        for s in senders
    }
    insert_rows(list(made.values()))
    identities = [
        ContactIdentity(
            channel=channel,
            contact=made[sender.external_id],
            external_id=sender.external_id,
            display_name=sender.name,
            username=sender.username,
            avatar_url=sender.avatar_url,
        )
        for sender in senders
    ]
    won = insert_new_rows(identities, ("channel", "external_id"))
    won_ids = {identity.external_id for identity in won}
    lost = [sender_id for sender_id in made if sender_id not in won_ids]
    if lost:
        delete_rows(Contact, [made[sender_id].pk for sender_id in lost])
        won += ContactIdentity.objects.select_related("contact").filter(
            channel=channel, external_id__in=lost
        )
    return won


def _locked_conversations(
    channel: Channel, items: list[InboundMessage], contacts: dict[str, Contact]
) -> tuple[dict[str, Conversation], set[str]]:
    """Every conversation of the batch, row-locked (in id order, so batches cannot deadlock
    on them); missing ones created race-free. Returns them and the chat ids created here."""
    first_item: dict[str, InboundMessage] = {}
    for item in items:
        first_item.setdefault(_chat_id(item), item)
    conversations = _lock_conversations(channel, list(first_item))
    missing = sorted(chat_id for chat_id in first_item if chat_id not in conversations)
    if not missing:
        return conversations, set()
    now = timezone.now()
    new = []
    for chat_id in missing:
        item = first_item[chat_id]
        started = item.timestamp if item.timestamp and item.timestamp <= now else now
        new.append(
            Conversation(
                channel=channel,
                contact=contacts[item.sender.external_id],
                external_id=chat_id,
                subject=item.subject[:255],
                last_message_at=started,
            )
        )
    # Rows inserted here are this transaction's until it commits: locked as surely as the
    # others. A chat a concurrent delivery created first is locked once that one commits.
    created = insert_new_rows(new, ("channel", "external_id"))
    conversations |= {conversation.external_id: conversation for conversation in created}
    lost = [chat_id for chat_id in missing if chat_id not in conversations]
    if lost:
        conversations |= _lock_conversations(channel, lost)
    return conversations, {conversation.external_id for conversation in created}


def _lock_conversations(channel: Channel, chat_ids: list[str]) -> dict[str, Conversation]:
    """The chats' rows locked, and for a chat merged into another conversation
    (services/merge.py) its survivor's row instead: its messages go there.

    Chats and survivors are locked by one statement in id order, the order merge, split and
    undo lock in, so an ingest racing an undo waits rather than deadlocks. Only the
    conversation rows are locked (a bare FOR UPDATE would also lock the joined channel and
    contact rows and serialise every ingest of a channel); the channel's secrets are not
    loaded (joining them would decrypt them once per row)."""
    ours = Conversation.objects.filter(channel=channel, external_id__in=chat_ids)
    # A UNION, not an OR: PostgreSQL scans the whole table for `id = … OR id IN (subquery)`.
    chats_and_survivors = ours.values("pk").union(
        ours.filter(merged_into__isnull=False).values("merged_into_id"), all=True
    )
    found = {
        conversation.pk: conversation
        for conversation in _locked_rows(Q(pk__in=chats_and_survivors))
    }
    # A chat merged after that statement began names a survivor it did not lock: lock it
    # after (rare; should it deadlock, the batch is retried).
    late = {c.merged_into_id for c in found.values() if c.merged_into_id} - set(found)
    if late:
        found |= {conversation.pk: conversation for conversation in _locked_rows(Q(pk__in=late))}
    wanted = set(chat_ids)
    conversations = {}
    for conversation in found.values():
        if conversation.channel_id == channel.pk:
            conversation.channel = channel
            if conversation.external_id in wanted:
                conversations[conversation.external_id] = conversation
    for chat_id, conversation in list(conversations.items()):
        if conversation.merged_into_id is not None:
            conversations[chat_id] = found[conversation.merged_into_id]
    return conversations


def _locked_rows(where: Q) -> list[Conversation]:
    return list(
        with_label_ids(Conversation.objects.select_for_update(of=("self",)))  # saved views
        .select_related("contact", "assignee", "channel")
        .defer("channel__secrets")
        .filter(where)
        .order_by("id")
    )


def _reply_targets(channel: Channel, items: list[InboundMessage]) -> dict[str | None, int]:
    wanted = [item.reply_to_external_id for item in items if item.reply_to_external_id]
    if not wanted:
        return {}
    return dict(
        Message.objects.filter(channel=channel, external_id__in=wanted).values_list(
            "external_id", "id"
        )
    )


def _link_replies_within_batch(new: list[tuple[int, InboundMessage, Message]]) -> None:
    """A reply to a message stored in the same batch: its id exists only now."""
    by_external_id = {m.external_id: m for _, _, m in new if m.external_id}
    for _, item, message in new:
        target = by_external_id.get(item.reply_to_external_id)
        if message.reply_to_id is None and target is not None:
            message.reply_to_id = target.pk
            Message.objects.filter(pk=message.pk).update(reply_to_id=target.pk)


class _DuplicateFinder:
    """The dedup layers, read for the whole batch in at most two queries, plus what the batch
    itself already holds. Runs under the conversations' row locks."""

    def __init__(self, channel: Channel, items: list[InboundMessage]):
        self.channel = channel
        ids = [item.external_id for item in items if item.external_id]
        keys = [key for key in map(_dedup_key, items) if key]
        self.by_id = (
            {m.external_id: m for m in Message.objects.filter(channel=channel, external_id__in=ids)}
            if ids
            else {}
        )
        self.by_key = (
            {m.dedup_key: m for m in Message.objects.filter(channel=channel, dedup_key__in=keys)}
            if keys
            else {}
        )
        self.by_content: dict[tuple, Message] = {}

    def find(
        self, item: InboundMessage, conversation: Conversation, contact: Contact
    ) -> Message | None:
        if item.external_id:
            return self.by_id.get(item.external_id)
        key = _dedup_key(item)
        if key:
            return self.by_key.get(key)
        return self.by_content.get(self._content_key(item, conversation)) or _recent_same_text(
            conversation, contact, item
        )

    def remember(self, item: InboundMessage, message: Message) -> None:
        if item.external_id:
            self.by_id[item.external_id] = message
        elif message.dedup_key:
            self.by_key[message.dedup_key] = message
        else:
            self.by_content[self._content_key(item, message.conversation)] = message

    @staticmethod
    def _content_key(item: InboundMessage, conversation: Conversation) -> tuple:
        return (conversation.pk, item.direction, item.sender.external_id, item.kind, item.content)


def _recent_same_text(
    conversation: Conversation, contact: Contact, item: InboundMessage
) -> Message | None:
    """No id, no timestamp: the same text from the same sender within the window."""
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


def _dedup_key(item: InboundMessage) -> str | None:
    """Sender + provider timestamp + text, for sources that give no message id.

    With neither id nor timestamp there is no key: the window check in `_find_duplicate`,
    made under the conversation's row lock, is what keeps a redelivery out.
    """
    if item.external_id or item.timestamp is None:
        return None
    parts = [item.sender.external_id, item.kind, item.content, item.timestamp.isoformat()]
    return "ts:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


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
            store_after_commit(attachment, ContentFile(inbound.data), attachment.filename)
        elif inbound.download_error:
            attachment.download_state = Attachment.DownloadState.FAILED
            attachment.download_error = inbound.download_error[:1000]
        attachment.save()
        if attachment.download_state == Attachment.DownloadState.FAILED:
            queue_download_retry(attachment.pk, attempts=0)
        stored.append(attachment)
    return stored


def _apply_to_conversation(
    conversation: Conversation, message: Message, *, historical: bool
) -> None:
    """What a new message changes in its conversation (saved once per batch by the caller)."""
    inbound = message.direction == Message.Direction.INBOUND
    newest = message.created_at >= conversation.last_message_at
    conversation.last_message_at = max(conversation.last_message_at, message.created_at)
    if newest or not historical:
        conversation.last_message_preview = preview_text(message)
    if inbound and (
        conversation.last_inbound_at is None or conversation.last_inbound_at <= message.created_at
    ):
        conversation.last_inbound_at = message.created_at
    if historical or not inbound:
        # A history import neither counts as unread nor reopens the conversation.
        return
    conversation.unread_count += 1
    if conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
        conversation.status = Conversation.Status.OPEN
        conversation.snoozed_until = None


def preview_text(message: Message) -> str:
    if message.content:
        return message.content[:200]
    return f"[{message.get_kind_display()}]"
