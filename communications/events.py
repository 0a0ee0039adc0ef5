"""Realtime events: recorded with the change that caused them, broadcast after commit.

Every event gets the id of its RealtimeEvent row, which is what clients resume from. Payloads
are serialised now (the rows may change after) and sent to the channel's group only once the
transaction commits, so a browser never hears of a message it cannot load.
"""

import asyncio
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from crm.bulk_sql import insert_rows, insert_rows_then

from .models import RealtimeEvent

logger = logging.getLogger(__name__)

MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_UPDATED = "conversation.updated"
# A contact's name or picture changed (R12, the profile refresh): data is the contact's JSON.
CONTACT_UPDATED = "contact.updated"
TYPING = "typing"
# Not an event for the page: tells every open socket to re-read what its user may see.
ACCESS_CHANGED = "access.changed"
ACCESS_GROUP = "inbox.access"


def channel_group(channel_id: int) -> str:
    return f"inbox.channel.{channel_id}"


def user_group(user_id: int) -> str:
    """Events for one user's sockets only (`mention.created`)."""
    return f"inbox.user.{user_id}"


def record_user_event(
    event_type: str, *, user_id: int, conversation_id: int | None, payload: dict
) -> RealtimeEvent:
    """An event for one user's open inboxes (stored for resume like any other), after commit."""
    row = RealtimeEvent(
        type=event_type,
        channel_id=None,
        user_id=user_id,
        conversation_id=conversation_id,
        payload=payload,
    )
    insert_rows([row])
    event = {"id": row.pk, "type": row.type, "data": row.payload}
    transaction.on_commit(lambda: _send_to_groups({user_group(user_id): [event]}))
    return row


def record_user_events(event_type: str, *, user_ids: list[int], payload: dict) -> None:
    """One event for each of several users' open inboxes (a shared saved view changed), in
    one INSERT, sent after commit."""
    rows = [
        RealtimeEvent(
            type=event_type, channel_id=None, user_id=u, conversation_id=None, payload=payload
        )
        for u in dict.fromkeys(user_ids)
    ]
    if not rows:
        return
    insert_rows(rows)
    by_group = {
        user_group(row.user_id): [{"id": row.pk, "type": row.type, "data": row.payload}]
        for row in rows
    }
    transaction.on_commit(lambda: _send_to_groups(by_group))


def record_event(
    event_type: str,
    *,
    channel_id: int,
    conversation_id: int | None,
    payload: dict,
    counts: dict | None = None,
    views: dict | None = None,
) -> RealtimeEvent:
    """Store the event and broadcast it after the surrounding transaction commits. `counts`:
    how it moves the inbox's counts (communications/counts.py `counts_delta`); `views`: the
    conversation's state before and after, for the saved views' counts (`views_move`)."""
    return record_events([(event_type, channel_id, conversation_id, payload, counts, views)])[0]


def record_events(items: list[tuple]) -> list[RealtimeEvent]:
    """Many events in one INSERT: (type, channel_id, conversation_id, payload[, counts[,
    views]]) each, in order."""
    from .services import outgoing_webhooks

    rows = [
        RealtimeEvent(
            type=t,
            channel_id=ch,
            conversation_id=conv,
            payload=payload,
            counts=extra[0] if extra else None,
            views=extra[1] if len(extra) > 1 else None,
        )
        for t, ch, conv, payload, *extra in items
    ]
    # Integrators' outgoing webhooks: their outbox rows are written with the events, in the
    # same statement on PostgreSQL (no extra round trip), so they commit or roll back together.
    if outgoing_webhooks.uses_combined_insert():
        queued = insert_rows_then(rows, outgoing_webhooks.outbox_sql())
    else:
        insert_rows(rows)
        queued = outgoing_webhooks.record_outbox_fallback(rows)
    outgoing_webhooks.after_outbox_write(queued)
    outgoing = [
        (row.channel_id, envelope(row.pk, row.type, row.payload, row.counts, row.views))
        for row in rows
    ]
    transaction.on_commit(lambda: broadcast_events(outgoing))
    return rows


def envelope(
    event_id: int, event_type: str, payload: dict, counts: dict | None, views: dict | None = None
) -> dict:
    """An event as pages receive it, live or replayed: `counts` only where it moves any,
    `views` only where it may move a saved view's count."""
    event = {"id": event_id, "type": event_type, "data": payload}
    if counts:
        event["counts"] = counts
    if views:
        event["views"] = views
    return event


def broadcast_ephemeral(event_type: str, *, channel_id: int, payload: dict) -> None:
    """Events that need no resume (typing): no row, no id, sent at once."""
    broadcast_events([(channel_id, {"id": None, "type": event_type, "data": payload})])


def broadcast_events(items: list[tuple[int, dict]]) -> None:
    """Send (channel_id, event) pairs to the channels' groups, in order, in one hop to an event
    loop. Each group gets one layer message holding its events ("inbox.events"): a batch of a
    hundred costs one group_send (with Redis a few round trips), not a hundred."""
    by_group: dict[str, list[dict]] = {}
    for channel_id, event in items:
        by_group.setdefault(channel_group(channel_id), []).append(event)
    _send_to_groups(by_group)


def access_changed() -> None:
    """Channels, teams or their members changed: once this commits, every open inbox socket
    re-reads what its user may see, joins and leaves channels, and has its page reload."""
    event = {"id": None, "type": ACCESS_CHANGED}
    transaction.on_commit(lambda: _send_to_groups({ACCESS_GROUP: [event]}))


def _send_to_groups(by_group: dict[str, list[dict]]) -> None:
    layer = get_channel_layer()
    if layer is None or not by_group:
        return

    async def send_in_order():
        for group, group_events in by_group.items():
            await layer.group_send(group, {"type": "inbox.events", "events": group_events})

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the server's event loop: hop onto that one.
            async_to_sync(send_in_order)()
        else:
            _LayerLoop.run(send_in_order)
    except Exception:  # a dead layer must not fail the write that already committed
        count = sum(len(group_events) for group_events in by_group.values())
        logger.exception("realtime broadcast of %d event(s) failed", count)


class _LayerLoop:
    """One long-lived event loop per process for sending to a network layer (Redis) from sync
    code. async_to_sync outside a server starts a new loop per call, and channels-redis opens
    new connections per loop: ~3 ms per broadcast. This keeps one loop and its connections."""

    _loop: asyncio.AbstractEventLoop | None = None
    _pid: int | None = None
    _lock = threading.Lock()

    @classmethod
    def run(cls, coroutine_function, timeout: float = 10.0):
        with cls._lock:
            if cls._loop is None or cls._pid != os.getpid():  # none yet, or we were forked
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="switchboard-layer-loop", daemon=True
                ).start()
                cls._loop, cls._pid = loop, os.getpid()
        future = asyncio.run_coroutine_threadsafe(coroutine_function(), cls._loop)
        return future.result(timeout=timeout)
