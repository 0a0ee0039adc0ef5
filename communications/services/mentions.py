"""@mentions in private notes: `@username` names a manager who can see the conversation.

`resolve_mentions` reads a note's text before it is stored (send.py puts the result in the
note's metadata, so the thread renders mentions without a query); `record_mentions` stores one
Mention per named manager in the note's transaction and sends that manager — only them — a
`mention.created` event after commit, whoever the conversation is assigned to.

Web Push and other notifications hook in at `on_mention(user, message)`, called once per
mention after commit.
"""

import logging
import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from crm.models import Team

from .. import events
from ..models import Conversation, Mention, Message
from ..serializers import _time, _user_name

logger = logging.getLogger(__name__)

MENTION_CREATED = "mention.created"
MENTIONS_READ = "mentions.read"

# `@` then a Django username (letters, digits, @ . + - _), not inside a word or an address.
MENTION_PATTERN = re.compile(r"(?<![\w.+-])@([\w.@+-]+)")


def mentionable_users(conversation: Conversation):
    """Who can be mentioned in `conversation`: active members of its channel's teams (the
    managers who can see it)."""
    teams = Team.objects.filter(channels=conversation.channel_id)
    return (
        get_user_model()
        .objects.filter(is_active=True, teams__in=teams)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def mentioned_usernames(text: str) -> list[str]:
    names = []
    for match in MENTION_PATTERN.finditer(text or ""):
        name = match.group(1).rstrip(".,;:!?)'\"")
        if name and name not in names:
            names.append(name)
    return names


def resolve_mentions(conversation: Conversation, text: str, author) -> list[dict]:
    """[{id, username, name}] of the managers `text` names who can see `conversation`;
    anyone else (the author, an outsider, an unknown name) is not a mention."""
    names = mentioned_usernames(text)
    if not names:
        return []
    users = mentionable_users(conversation).filter(username__in=names)
    if author is not None:
        users = users.exclude(pk=author.pk)
    found = {user.username: user for user in users}
    return [
        {"id": found[n].pk, "username": n, "name": _user_name(found[n])}
        for n in names
        if n in found
    ]


def record_mentions(message: Message, mentions: list[dict]) -> list[Mention]:
    """In the note's transaction: store the mentions, queue each one's event and hook."""
    if not mentions:
        return []
    rows = Mention.objects.bulk_create(
        [
            Mention(
                message=message,
                conversation_id=message.conversation_id,
                user_id=mention["id"],
                created_at=message.created_at,
            )
            for mention in mentions
        ]
    )
    author = _user_name(message.sender_user) if message.sender_user_id else ""
    conversation = message.conversation
    for row in rows:
        events.record_user_event(
            MENTION_CREATED,
            user_id=row.user_id,
            conversation_id=message.conversation_id,
            payload=mention_payload_for(row, message, conversation, author),
        )
    transaction.on_commit(lambda: _after_commit(rows, message))
    return rows


def on_mention(user, message: Message) -> None:
    """Notifications outside the inbox (Web Push): called after commit, once per mentioned
    manager; the caller logs failures."""
    from communications.notifications import notify_mention

    notify_mention(user, message)


def _after_commit(rows: list[Mention], message: Message) -> None:
    users = get_user_model().objects.in_bulk([row.user_id for row in rows])
    for row in rows:
        try:
            on_mention(users[row.user_id], message)
        except Exception:
            logger.exception("mention notification for user %s failed", row.user_id)


def mention_payload_for(mention: Mention, message: Message, conversation, author: str) -> dict:
    contact = conversation.contact
    return {
        "id": mention.pk,
        "created_at": _time(mention.created_at),
        "read_at": _time(mention.read_at),
        "conversation": {
            "id": conversation.pk,
            "contact_name": contact.name or contact.phone or contact.email or "",
            "channel_id": conversation.channel_id,
        },
        "message": {
            "id": message.pk,
            "content": message.content,
            "sender_name": author,
            "created_at": _time(message.created_at),
        },
    }


def mark_mentions_read(user, *, ids: list[int] | None = None, conversation_id=None) -> list[int]:
    """Mark the user's unread mentions read (these ids, this conversation's, or all); tells the
    user's other tabs (`mentions.read`) after commit. Returns the ids marked."""
    with transaction.atomic():
        unread = Mention.objects.filter(user=user, read_at__isnull=True)
        if ids is not None:
            unread = unread.filter(pk__in=ids)
        if conversation_id is not None:
            unread = unread.filter(conversation_id=conversation_id)
        marked = list(unread.select_for_update().values_list("pk", flat=True))
        if not marked:
            return []
        now = timezone.now()
        Mention.objects.filter(pk__in=marked).update(read_at=now)
        events.record_user_event(
            MENTIONS_READ,
            user_id=user.pk,
            conversation_id=None,
            payload={"ids": marked, "read_at": _time(now)},
        )
    return marked
