"""Which conversation a mail belongs to: the part Chatwoot gets wrong (#10028, #3868, #12566,
#13502).

The rules, in order; the first that answers wins:

1. its own Message-ID is already stored: the conversation that holds it (a re-fetch, the same
   mail in two folders, a UIDVALIDITY change — ingest then finds the duplicate);
2. In-Reply-To, then References from the newest back: any id we stored, the customer's mails
   and our own replies alike (our replies are stored under the Message-ID we gave them), or a
   mail earlier in the same batch;
3. our reply token: our Message-IDs are `sb.<conversation>.<message>.<token>@domain`, the token
   an HMAC of channel and conversation, so a reply whose client dropped our message from
   References but kept any of our ids still finds its conversation, and a forged one does not;
4. only for a mail that says it is a reply (thread headers or a "Re:"-style subject): the
   SAME sender's conversation with the same normalised subject that saw a message within
   `subject_thread_days`. Never another sender's: two customers who write "Order question"
   get two conversations, and so do newsletter replies;
5. otherwise a new conversation, keyed by this mail's Message-ID (the thread root).

A reply that lands in a resolved conversation reopens it (ingest does that for every inbound
message): the thread headers say it is the same exchange, so it stays one conversation with
its history rather than a new one.
"""

import hashlib
import hmac
import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from communications.models import Conversation, Message

from .models import EmailAccount
from .parse import ParsedMail

REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|tr|odp|ynt)(\s*\[\d+\])?\s*[:：]\s*|\[[^\]]{1,40}\]\s*)+",
    re.IGNORECASE,
)
OUR_ID = re.compile(r"^sb\.(\d+)\.(\d+)\.([0-9a-f]{12})@")


def normalise_subject(subject: str) -> str:
    return " ".join(REPLY_PREFIX.sub("", subject or "").split()).casefold()


def is_reply_subject(subject: str) -> bool:
    return bool(REPLY_PREFIX.match(subject or ""))


def reply_subject(subject: str) -> str:
    """The conversation's subject with exactly one "Re:"."""
    base = " ".join(REPLY_PREFIX.sub("", subject or "").split())
    return f"Re: {base}" if base else "Re:"


def _token(channel_id: int, conversation_id: int) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(
        key, f"email:{channel_id}:{conversation_id}".encode(), hashlib.sha256
    ).hexdigest()[:12]


def new_message_id(channel_id: int, conversation_id: int, message_id: int, domain: str) -> str:
    """Our Message-ID for an outbound mail (without angle brackets), carrying the reply token.
    Unique because the message id is."""
    return f"sb.{conversation_id}.{message_id}.{_token(channel_id, conversation_id)}@{domain}"


def _conversation_from_token(channel_id: int, mid: str) -> int | None:
    match = OUR_ID.match(mid)
    if not match:
        return None
    conversation_id = int(match.group(1))
    if hmac.compare_digest(match.group(3), _token(channel_id, conversation_id)):
        return conversation_id
    return None


def assign_conversations(account: EmailAccount, mails: list[ParsedMail]) -> list[str]:
    """The conversation key (Conversation.external_id) for each mail, in order. Three queries
    for the whole batch, whatever its size."""
    channel_id = account.channel_id
    wanted = {m.message_id for m in mails} | {mid for m in mails for mid in m.thread_ids}
    known: dict[str, str] = dict(
        Message.objects.filter(channel_id=channel_id, external_id__in=list(wanted)).values_list(
            "external_id", "conversation__external_id"
        )
    )
    token_conversations = {
        mid: conversation_id
        for mid in wanted
        if (conversation_id := _conversation_from_token(channel_id, mid)) is not None
    }
    by_pk = (
        dict(
            Conversation.objects.filter(
                channel_id=channel_id, pk__in=set(token_conversations.values())
            ).values_list("pk", "external_id")
        )
        if token_conversations
        else {}
    )
    recent = _recent_by_sender_subject(account, mails)

    keys: list[str] = []
    for mail in mails:
        key = known.get(mail.message_id)
        if key is None:
            key = next((known[mid] for mid in mail.thread_ids if mid in known), None)
        if key is None:
            key = next(
                (
                    by_pk[token_conversations[mid]]
                    for mid in mail.thread_ids
                    if token_conversations.get(mid) in by_pk
                ),
                None,
            )
        subject_key = (mail.sender_address, normalise_subject(mail.subject))
        if key is None and subject_key[1] and (mail.thread_ids or is_reply_subject(mail.subject)):
            key = recent.get(subject_key)
        if key is None:
            key = mail.message_id
        # Later mails of the same batch thread onto this one.
        known.setdefault(mail.message_id, key)
        if subject_key[1]:
            recent.setdefault(subject_key, key)
        keys.append(key)
    return keys


def _recent_by_sender_subject(
    account: EmailAccount, mails: list[ParsedMail]
) -> dict[tuple[str, str], str]:
    """(sender, normalised subject) → key of that sender's newest conversation with the
    subject, active within the window. One query."""
    senders = {m.sender_address for m in mails if m.sender_address}
    if not senders:
        return {}
    cutoff = timezone.now() - timedelta(days=account.subject_thread_days)
    rows = (
        Conversation.objects.filter(
            channel_id=account.channel_id,
            contact__identities__channel_id=account.channel_id,
            contact__identities__external_id__in=senders,
            last_message_at__gte=cutoff,
        )
        .order_by("-last_message_at")
        .values_list("contact__identities__external_id", "subject", "external_id")
    )
    found: dict[tuple[str, str], str] = {}
    for sender, subject, key in rows:
        found.setdefault((sender, normalise_subject(subject)), key)
    return found
