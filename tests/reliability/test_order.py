"""A burst of replies reaches the API channel's receiver in the order they were written, with
a real worker (4 processes) and a receiver that is down (503) for the first seconds.

Without per-conversation order each reply retried on its own jittered timer, and replies
overtook each other."""

import pytest

from communications.models import Message
from communications.services.send import send_message
from tests import factories

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_burst_during_a_receiver_outage_arrives_in_order_once(
    worker_factory, receiver, manager, channel
):
    channel.config = {"callback_url": receiver.url}
    channel.save()
    conversation = factories.ConversationFactory(channel=channel)
    other = factories.ConversationFactory(channel=channel)
    outage = {}  # down for 2 s from the first request (retries back off 0.1 s, 0.2 s, …)

    def down_at_first(record):
        outage.setdefault("until", record["at"] + 2)
        return 503 if record["at"] < outage["until"] else 200

    receiver.status_for = down_at_first
    worker = worker_factory(concurrency=4)
    worker.start()

    ids = []
    for n in range(20):
        for target in (conversation, other):
            outcome = send_message(
                conversation=target, user=manager, client_id=f"{target.pk}-{n}", content=f"#{n}"
            )
            ids.append(outcome.message.pk)
    wait_until(
        lambda: not Message.objects.filter(pk__in=ids, status__in=["pending", "sending"]).exists(),
        120,
        "every reply to settle",
    )
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"}
    accepted = [r for r in receiver.records if r["status"] == 200]
    assert sorted(r["message_id"] for r in accepted) == sorted(ids)  # each once
    assert any(r["status"] == 503 for r in receiver.records)  # the outage was met
    for target in (conversation, other):
        arrived = [r["message_id"] for r in accepted if r["conversation_id"] == target.pk]
        assert arrived == sorted(arrived)
        assert len(arrived) == 20
