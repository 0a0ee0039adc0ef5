"""The automatic reply outside a channel's business hours (communications/business_hours.py).

Sent through the one send path, with a client id made of the conversation and the closed
period (the moment it ends): the send path stores one message per client id, so however many
messages the customer writes while the business is closed, and however often this runs, the
reply goes once per conversation per closed period.
"""

from django.utils import timezone

from ..business_hours import BusinessHours
from ..models import Channel, Conversation
from .send import SendRejected, send_message


def away_client_id(conversation_id: int, period_key: str) -> str:
    return f"away:{conversation_id}:{period_key}"


def send_away_replies(channel_id: int, conversation_ids: list[int], *, now=None) -> int:
    """Reply to each conversation if the channel is closed at `now`; returns how many replies
    were stored now (0 for conversations already answered in this closed period)."""
    channel = Channel.objects.defer("secrets").filter(pk=channel_id).first()
    if channel is None:
        return 0
    hours = BusinessHours.of(channel.business_hours)
    now = now or timezone.now()
    if hours is None or not hours.away_reply or hours.is_open(now):
        return 0
    period = hours.closed_period_key(now)
    sent = 0
    conversations = Conversation.objects.select_related("contact", "assignee").filter(
        channel_id=channel_id, pk__in=conversation_ids
    )
    for conversation in conversations.order_by("id"):
        conversation.channel = channel
        try:
            outcome = send_message(
                conversation=conversation,
                user=None,
                client_id=away_client_id(conversation.pk, period),
                content=hours.away_reply,
            )
        except SendRejected:
            continue  # the channel cannot reply now (its provider says why elsewhere)
        sent += outcome.created
    return sent
