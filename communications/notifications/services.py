"""Who is told about what, and queueing the pushes after commit.

A manager's level decides both the inbox's desktop notifications and Web Push:
`all` — every new inbound message in a conversation they can see; `mine` (the default) — new
inbound messages in conversations assigned to them, and mentions; `none` — nothing.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from ..access import can_see_channel
from ..models import Channel, Message
from . import push
from .models import DEFAULT_LEVEL, NotificationPreference, PushSubscription

logger = logging.getLogger(__name__)
Level = NotificationPreference.Level
# Publishing to a broker that is down gives up after ~0.5 s (as send.py does).
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def preference_for(user) -> NotificationPreference:
    """The user's settings; an unsaved row with the defaults when they have none."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found or NotificationPreference(user=user, level=DEFAULT_LEVEL)


def update_preference(user, *, level: str | None = None, sound: bool | None = None):
    preference = preference_for(user)
    if level is not None:
        preference.level = level
    if sound is not None:
        preference.sound = sound
    preference.save()
    return preference


def subscribe(user, *, endpoint: str, p256dh: str, auth: str, user_agent: str = ""):
    """Store a browser's subscription for `user`. Returns (subscription, created). The same
    endpoint again updates it (a browser signed in as someone else takes it over)."""
    subscription, created = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={
            "user": user,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": user_agent[:300],
            "last_failure": "",
            "last_failure_at": None,
        },
    )
    return subscription, created


# --- inbound messages ----------------------------------------------------------------------


def notify_inbound_messages(message_ids: list[int]) -> None:
    """New inbound messages were stored: once the transaction commits, the worker pushes them
    to the managers whose settings ask for them. Nothing is queued while Web Push is off."""
    if not message_ids or not push.is_available():
        return
    ids = list(message_ids)
    transaction.on_commit(lambda: _publish("push_inbound_messages", ids))


def notify_mention(user, note_message: Message) -> bool:
    """`user` was mentioned in a private note: push it to their devices (after commit), unless
    their level is `none`, they wrote the note themselves, or cannot see its conversation."""
    if not push.is_available() or not user.is_active:
        return False
    if note_message.sender_user_id == user.pk:
        return False
    if preference_for(user).level == Level.NONE:
        return False
    if not can_see_channel(user, note_message.channel_id):
        return False
    user_id, message_id = user.pk, note_message.pk
    transaction.on_commit(lambda: _publish("push_mention", user_id, message_id))
    return True


def _publish(task_name: str, *args) -> None:
    from . import tasks

    task = getattr(tasks, task_name)
    try:
        task.apply_async(args, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # the messages are stored; a lost push is only a missed ping
        logger.warning("%s%s not queued (%s: %s)", task.name, args, exc.__class__.__name__, exc)


def inbound_recipients(messages: list[Message]) -> list[tuple[PushSubscription, Message, int]]:
    """(subscription, newest message, how many new) per subscription and conversation that
    should hear of `messages`, in two queries whatever the batch size."""
    newest: dict[int, Message] = {}
    counts: dict[int, int] = {}
    for message in messages:
        conversation_id = message.conversation_id
        counts[conversation_id] = counts.get(conversation_id, 0) + 1
        if conversation_id not in newest or message.pk > newest[conversation_id].pk:
            newest[conversation_id] = message
    if not newest:
        return []
    channel_ids = {m.channel_id for m in newest.values()}
    assignee_ids = {m.conversation.assignee_id for m in newest.values()} - {None}
    subscriptions = list(
        PushSubscription.objects.select_related("user__notification_preference")
        .filter(user__is_active=True)
        .filter(
            Q(user__notification_preference__level=Level.ALL)
            | Q(user_id__in=assignee_ids) & ~Q(user__notification_preference__level=Level.NONE)
        )
    )
    if not subscriptions:
        return []
    user_ids = {s.user_id for s in subscriptions}
    visible: set[tuple[int, int]] = set(
        Channel.teams.through.objects.filter(
            channel_id__in=channel_ids, team__members__in=user_ids
        ).values_list("team__members", "channel_id")
    )
    recipients = []
    for subscription in subscriptions:
        user = subscription.user
        level = _level_of(user)
        for conversation_id, message in newest.items():
            if not (user.is_superuser or (user.pk, message.channel_id) in visible):
                continue
            mine = message.conversation.assignee_id == user.pk
            if level == Level.ALL or (level == Level.MINE and mine):
                recipients.append((subscription, message, counts[conversation_id]))
    return recipients


def _level_of(user) -> str:
    try:
        return user.notification_preference.level
    except NotificationPreference.DoesNotExist:
        return DEFAULT_LEVEL


# --- what a push says ----------------------------------------------------------------------


def inbound_payload(message: Message, count: int) -> dict:
    conversation = message.conversation
    contact = conversation.contact
    who = contact.name or contact.phone or contact.email or "A customer"
    body = _preview(message)
    if count > 1:
        body = f"{count} new messages · {body}"
    return {
        "type": "message",
        "title": f"{who} · {message.channel.name}",
        "body": body,
        "url": f"/inbox/#c{conversation.pk}",
        "tag": f"sb-c{conversation.pk}",
        "conversation_id": conversation.pk,
        "message_id": message.pk,
    }


def mention_payload(message: Message) -> dict:
    conversation = message.conversation
    author = message.sender_user
    name = (author.get_full_name() or author.get_username()) if author else "Someone"
    contact = conversation.contact
    who = contact.name or contact.phone or contact.email or f"conversation #{conversation.pk}"
    return {
        "type": "mention",
        "title": f"{name} mentioned you · {who}",
        "body": _preview(message),
        "url": f"/inbox/#c{conversation.pk}",
        "tag": f"sb-m{message.pk}",
        "conversation_id": conversation.pk,
        "message_id": message.pk,
    }


def topic_for(conversation_id: int) -> str:
    """A Topic header (≤ 32 URL-safe characters): a newer push of the conversation replaces
    one the device has not fetched yet."""
    return f"c{conversation_id}"[:32]


def _preview(message: Message) -> str:
    if message.is_deleted:
        return "(deleted)"
    text = " ".join((message.content or "").split())
    if not text:
        text = {"image": "📷 Photo", "video": "🎬 Video", "audio": "🎤 Audio"}.get(
            message.kind, "📎 Attachment"
        )
    limit = settings.WEBPUSH_PREVIEW_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"
