"""Cumulative receipts: one receipt moves every earlier outbound message of the chat forward."""

from datetime import timedelta

import pytest
from django.utils import timezone

from communications import events
from communications.models import EarlyStatus, Message, RealtimeEvent
from communications.services.receipts import apply_receipt
from tests import factories

pytestmark = pytest.mark.django_db

S = Message.Status


@pytest.fixture
def burst(channel):
    """20 replies sent (ids stored), one inbound message between them, and a second chat."""
    conversation = factories.ConversationFactory(channel=channel, external_id="!room")
    start = timezone.now() - timedelta(minutes=5)
    sent = []
    for n in range(20):
        sent.append(
            factories.MessageFactory(
                conversation=conversation,
                direction=Message.Direction.OUTBOUND,
                status=S.SENT,
                external_id=f"$out{n}",
                created_at=start + timedelta(seconds=n),
            )
        )
    factories.MessageFactory(conversation=conversation, external_id="$in", created_at=start)
    other = factories.ConversationFactory(channel=channel, external_id="!other")
    factories.MessageFactory(
        conversation=other,
        direction=Message.Direction.OUTBOUND,
        status=S.SENT,
        external_id="$elsewhere",
        created_at=start,
    )
    return sent


def statuses(messages):
    by_id = dict(Message.objects.values_list("id", "status"))
    return [by_id[m.pk] for m in messages]


def receipt(channel, event_id, status):
    return apply_receipt(
        channel_id=channel.pk, conversation_external_id="!room", external_id=event_id, status=status
    )


def test_one_receipt_delivers_every_earlier_reply_in_a_fixed_number_of_queries(
    channel, burst, count_queries, django_capture_on_commit_callbacks
):
    with count_queries() as counter, django_capture_on_commit_callbacks(execute=False):
        assert receipt(channel, "$out14", S.DELIVERED) == 15
    # savepoint, UPDATE … RETURNING, messages, attachments, events INSERT, release
    assert counter.count == 6, counter.explain()
    assert statuses(burst) == [S.DELIVERED] * 15 + [S.SENT] * 5
    assert Message.objects.get(external_id="$in").status == S.RECEIVED
    assert Message.objects.get(external_id="$elsewhere").status == S.SENT
    updated = RealtimeEvent.objects.filter(type=events.MESSAGE_UPDATED).order_by("id")
    assert [e.payload["id"] for e in updated] == [m.pk for m in burst[:15]]
    assert {e.payload["status"] for e in updated} == {S.DELIVERED}


def test_the_same_number_of_queries_for_a_burst_of_any_size(channel, burst, count_queries):
    with count_queries() as counter:
        assert receipt(channel, "$out1", S.DELIVERED) == 2
    with count_queries() as bigger:
        assert receipt(channel, "$out19", S.DELIVERED) == 18
    assert counter.count == bigger.count, bigger.explain()


def test_receipts_only_move_forward(channel, burst):
    receipt(channel, "$out9", S.READ)
    assert receipt(channel, "$out14", S.DELIVERED) == 5  # 10..14; 0..9 stay read
    assert statuses(burst) == [S.READ] * 10 + [S.DELIVERED] * 5 + [S.SENT] * 5
    assert receipt(channel, "$out3", S.DELIVERED) == 0


def test_pending_and_failed_replies_are_left_alone(channel, burst):
    Message.objects.filter(pk=burst[2].pk).update(status=S.FAILED)
    Message.objects.filter(pk=burst[3].pk).update(status=S.PENDING)  # a staff retry under way
    assert receipt(channel, "$out5", S.DELIVERED) == 4
    assert (
        statuses(burst)[:6] == [S.DELIVERED, S.DELIVERED, S.FAILED, S.PENDING] + [S.DELIVERED] * 2
    )


def test_a_receipt_for_a_reply_whose_id_is_not_stored_yet(
    channel, burst, django_capture_on_commit_callbacks
):
    """The bridge's receipt overtook the send's answer: the replies stored so far went out
    before it (one conversation sends in order), and the named one gets it when its id comes."""
    with django_capture_on_commit_callbacks(execute=True):
        assert receipt(channel, "$not-yet", S.DELIVERED) == 20
    assert statuses(burst) == [S.DELIVERED] * 20
    assert EarlyStatus.objects.filter(external_id="$not-yet", status=S.DELIVERED).exists()
