"""Cumulative read receipts: a receipt for one message means every earlier one got there too.

Platforms that acknowledge with receipts (the WhatsApp bridge's `m.read`, a contact's read)
name only the newest message seen, and a homeserver keeps only the latest receipt per user and
room: replies sent in a burst would otherwise stay "sent" forever. One conditional UPDATE moves
every outbound message of the conversation up to the named one forward (never back), then the
changed messages are announced in one batch. Per-message statuses (the bridge's
`message_send_status`) stay with `send.update_status_by_external_id`.
"""

from django.db import connection, transaction
from django.utils import timezone

from .. import events
from ..models import Attachment, Conversation, Message
from ..serializers import message_payload
from .send import statuses_before, update_status_by_external_id


def _update_sql(placeholders: str) -> str:
    message = connection.ops.quote_name(Message._meta.db_table)
    conversation = connection.ops.quote_name(Conversation._meta.db_table)
    # "Up to the named message": no message of that id is older than the row. When the named
    # message is not stored yet (its send's answer is still on the way) nothing is excluded:
    # outbound messages of a conversation are handed over in order, so every one whose id is
    # stored went out before it.
    return f"""
        UPDATE {message} SET status = %s, updated_at = %s
        WHERE conversation_id = (
                SELECT id FROM {conversation} WHERE channel_id = %s AND external_id = %s
            )
          AND direction = %s
          AND external_id IS NOT NULL
          AND status IN ({placeholders})
          AND NOT EXISTS (
                SELECT 1 FROM {message} AS named
                WHERE named.channel_id = %s AND named.external_id = %s
                  AND (named.created_at < {message}.created_at
                       OR (named.created_at = {message}.created_at AND named.id < {message}.id))
            )
        RETURNING id, external_id
    """


def apply_receipt(
    *, channel_id: int, conversation_external_id: str, external_id: str, status: str
) -> int:
    """`status` (delivered or read) for every outbound message of the conversation up to the
    message `external_id` names; returns how many changed. A fixed number of statements."""
    if not external_id or not conversation_external_id:
        return 0
    # A pending message that still has an id is being sent again: not delivered by this.
    before = [s for s in statuses_before(status) if s != Message.Status.PENDING]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _update_sql(", ".join(["%s"] * len(before))),
                [
                    status,
                    timezone.now(),
                    channel_id,
                    conversation_external_id,
                    Message.Direction.OUTBOUND,
                    *before,
                    channel_id,
                    external_id,
                ],
            )
            changed = dict(cursor.fetchall())
        if changed:
            _announce(list(changed))
    if external_id not in changed.values():
        # Not stored yet (or already there): the send path keeps it for when the id arrives.
        update_status_by_external_id(channel_id, external_id, status)
    return len(changed)


def _announce(message_ids: list[int]) -> None:
    messages = list(
        Message.objects.select_related("sender_user")
        .filter(pk__in=message_ids)
        .order_by("created_at", "id")
    )
    attachments: dict[int, list] = {}
    for attachment in Attachment.objects.filter(message_id__in=message_ids):
        attachments.setdefault(attachment.message_id, []).append(attachment)
    for message in messages:
        message.remember_attachments(attachments.get(message.pk, []))
    events.record_events(
        [
            (events.MESSAGE_UPDATED, m.channel_id, m.conversation_id, message_payload(m))
            for m in messages
        ]
    )
