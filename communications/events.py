"""Realtime events: recorded with the change that caused them, broadcast after commit.

Every event gets the id of its RealtimeEvent row, which is what clients resume from. Payloads
are serialised now (the rows may change after) and sent to the channel's group only once the
transaction commits, so a browser never hears of a message it cannot load.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .models import RealtimeEvent

logger = logging.getLogger(__name__)

MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_UPDATED = "conversation.updated"
TYPING = "typing"


def channel_group(channel_id: int) -> str:
    return f"inbox.channel.{channel_id}"


def record_event(
    event_type: str, *, channel_id: int, conversation_id: int | None, payload: dict
) -> RealtimeEvent:
    """Store the event and broadcast it after the surrounding transaction commits."""
    event = RealtimeEvent.objects.create(
        type=event_type, channel_id=channel_id, conversation_id=conversation_id, payload=payload
    )
    message = {
        "type": "inbox.event",
        "event": {"id": event.pk, "type": event_type, "data": payload},
    }
    transaction.on_commit(lambda: broadcast(channel_group(channel_id), message))
    return event


def broadcast_ephemeral(event_type: str, *, channel_id: int, payload: dict) -> None:
    """Events that need no resume (typing): no row, no id, sent at once."""
    message = {"type": "inbox.event", "event": {"id": None, "type": event_type, "data": payload}}
    broadcast(channel_group(channel_id), message)


def broadcast(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # a dead layer must not fail the write that already committed
        logger.exception("realtime broadcast to %s failed", group)
