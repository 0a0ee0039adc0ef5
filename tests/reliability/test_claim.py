"""The delivery claim, in the test process against real PostgreSQL and a real HTTP receiver:
one provider call per claim, ambiguous outcomes become "unknown", unexpected errors end
"failed", the conversation's order holds, and the sweeper finds what no task will."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from communications.models import Message, RealtimeEvent
from communications.services import delivery
from communications.tasks import deliver_message, sweep_outbound
from tests import factories


@pytest.fixture
def conversation(channel, receiver):
    channel.config = {"callback_url": receiver.url}
    channel.save()
    return factories.ConversationFactory(channel=channel)


def pending(conversation, n: int = 0, **fields) -> Message:
    """An outbound message as send_message stores it, its task not run yet."""
    values = {
        "conversation": conversation,
        "direction": "out",
        "status": "pending",
        "external_id": None,
        "client_id": f"c-{conversation.pk}-{n}",
        "content": f"reply {n}",
        "deliver_after": timezone.now(),
    }
    return factories.MessageFactory(**{**values, **fields})


@pytest.mark.django_db(transaction=True)
def test_many_workers_racing_for_one_message_call_the_provider_once(conversation, receiver):
    message = pending(conversation)
    start = threading.Barrier(12)
    # The receiver is slow to answer, so every racer arrives while the first call is open.
    receiver.on_request = lambda n, record: threading.Event().wait(0.3)
    results = []

    def race():
        try:
            start.wait()
            results.append(deliver_message(message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert receiver.counts() == {message.pk: 1}
    assert results.count("sent") == 1
    assert set(results) - {"sent"} <= {"skipped", "claimed elsewhere"}
    message.refresh_from_db()
    assert (message.status, message.send_attempts) == ("sent", 1)


@pytest.mark.django_db
def test_a_timeout_after_the_request_went_out_is_unknown_and_staff_resend_it(
    api, conversation, receiver, settings, django_capture_on_commit_callbacks
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "PROVIDER_HTTP_TIMEOUT": 0.5}
    receiver.on_request = lambda n, record: n == 1 and threading.Event().wait(1.5)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/conversations/{conversation.pk}/messages/",
            {"client_id": "c-1", "content": "Your order shipped"},
            format="json",
        )
    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["id"])
    # Not retried on its own: a second POST could be a second message for the customer.
    assert message.status == "unknown"
    assert "may or may not have arrived" in message.failure_reason
    assert receiver.counts() == {message.pk: 1}
    shown = api.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert [(m["status"], m["failure_reason"]) for m in shown] == [
        ("unknown", message.failure_reason)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        retried = api.post(f"/api/v1/messages/{message.pk}/retry/")
    assert retried.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.failure_reason) == ("sent", "")
    # The deliberate resend carries the same idempotency key: a receiver can drop it.
    assert [r["key"] for r in receiver.records] == [f"message-{message.pk}"] * 2


@pytest.mark.django_db
def test_retry_refuses_messages_that_are_neither_failed_nor_unknown(api, conversation):
    message = pending(conversation)
    Message.objects.filter(pk=message.pk).update(status="sending")
    response = api.post(f"/api/v1/messages/{message.pk}/retry/")
    assert response.status_code == 409
    assert "not a failed or unknown outbound message" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unexpected_error_ends_failed_with_the_reason_and_frees_the_conversation(
    conversation, receiver, django_capture_on_commit_callbacks
):
    channel = conversation.channel
    channel.config = ["not", "an", "object"]  # a hand-edited config the provider cannot read
    channel.save()
    first = pending(conversation, 1)
    assert deliver_message(first.pk) == "failed"
    first.refresh_from_db()
    assert first.status == "failed"
    assert first.failure_reason.startswith("unexpected error: AttributeError:")
    assert first.lease_until is None

    channel.config = {"callback_url": receiver.url}
    channel.save()
    second = pending(conversation, 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_message(second.pk) == "sent"
    assert receiver.counts() == {second.pk: 1}


@pytest.mark.django_db
def test_a_later_reply_waits_for_the_earlier_one_then_goes_at_once(
    conversation, receiver, django_capture_on_commit_callbacks
):
    first, second = pending(conversation, 1), pending(conversation, 2)
    # The second's task runs first (two workers, any order): it must not overtake.
    assert deliver_message(second.pk) == "waiting"
    assert receiver.records == []
    second.refresh_from_db()
    assert (second.status, second.send_attempts) == ("pending", 0)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_message(first.pk) == "sent"
    # Settling the first queued the second, without waiting for the sweeper.
    assert [r["message_id"] for r in receiver.records] == [first.pk, second.pk]
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
@pytest.mark.parametrize("settled_as", ["failed", "unknown"])
def test_a_failed_or_unknown_reply_does_not_hold_back_the_rest(conversation, receiver, settled_as):
    pending(conversation, 1, status=settled_as, failure_reason="HTTP 422")
    later = pending(conversation, 2)
    assert deliver_message(later.pk) == "sent"
    assert receiver.counts() == {later.pk: 1}


@pytest.mark.django_db
def test_replies_of_other_conversations_do_not_wait(conversation, receiver):
    pending(conversation, 1)
    other = pending(factories.ConversationFactory(channel=conversation.channel), 1)
    assert deliver_message(other.pk) == "sent"
    assert receiver.counts() == {other.pk: 1}


@pytest.mark.django_db
def test_a_dead_workers_claim_becomes_unknown_and_is_never_sent_again(
    staff_client, conversation, receiver, django_capture_on_commit_callbacks
):
    message = pending(conversation, 1)
    behind = pending(conversation, 2)
    claim = delivery.claim(message.pk)  # a worker took it… and died before the answer
    assert claim is not None
    assert deliver_message(message.pk) == "claimed elsewhere"  # its task, run again
    Message.objects.filter(pk=message.pk).update(lease_until=timezone.now() - timedelta(1))

    with django_capture_on_commit_callbacks(execute=True):
        report = sweep_outbound()
    assert report == {"requeued": 0, "resent": 0, "unknown": 1}
    message.refresh_from_db()
    assert message.status == "unknown"
    assert "worker stopped while handing this message" in message.failure_reason
    assert RealtimeEvent.objects.filter(
        type="message.updated", payload__id=message.pk, payload__status="unknown"
    ).exists()
    # The one behind it went on; the unknown one was not resent by anyone.
    assert receiver.counts() == {behind.pk: 1}
    assert deliver_message(message.pk) == "skipped"
    # The dead attempt's answer, were it to arrive now, could only say "sent".
    delivery.settle(claim, Message.Status.FAILED, reason="late")
    message.refresh_from_db()
    assert message.status == "unknown"

    page = staff_client.get("/admin/communications/message/?delivery=unknown")
    assert list(page.context["cl"].result_list) == [message]
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            "/admin/communications/message/",
            {"action": "retry_sending", "_selected_action": [message.pk]},
        )
    message.refresh_from_db()
    assert message.status == "sent"
    assert receiver.counts() == {behind.pk: 1, message.pk: 1}


@pytest.mark.django_db
def test_the_sweeper_queues_replies_whose_task_never_ran_and_health_counts_them(
    client, conversation, receiver, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timedelta(minutes=5)
    lost = pending(conversation, 1, deliver_after=long_ago)
    behind = pending(conversation, 2, deliver_after=long_ago)  # waits for `lost`: not stuck
    other_conversation = factories.ConversationFactory(channel=conversation.channel)
    lost_too = pending(other_conversation, 1, deliver_after=long_ago)
    fresh = pending(factories.ConversationFactory(channel=conversation.channel), 1)
    backing_off = pending(
        factories.ConversationFactory(channel=conversation.channel),
        1,
        deliver_after=timezone.now() + timedelta(minutes=5),
    )

    outbound = client.get("/health/").json()["checks"]["outbound"]
    assert outbound == {
        "status": "stale",
        "stuck": 2,
        "stuck_pending": 2,
        "expired_claims": 0,
        "unknown": 0,
        "required": False,
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_outbound() == {"requeued": 2, "resent": 0, "unknown": 0}
    assert receiver.counts() == {lost.pk: 1, behind.pk: 1, lost_too.pk: 1}
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses[fresh.pk] == statuses[backing_off.pk] == "pending"
    assert client.get("/health/").json()["checks"]["outbound"]["stuck"] == 0
