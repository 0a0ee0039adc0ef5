"""Outgoing webhooks: the outbox is written with the change, every delivery is signed, retried
with backoff, kept in order per conversation, and a subscription that keeps failing is
disabled with a reason and a mail to the admins."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from werkzeug import Response

from communications.models import (
    OutgoingWebhookAttempt,
    OutgoingWebhookDelivery,
    RealtimeEvent,
)
from communications.services import outgoing_webhooks

from .conftest import SECRET, customer_writes

pytestmark = pytest.mark.django_db


def make_due():
    """Time passes: every waiting retry is due now (no sleeping in tests)."""
    OutgoingWebhookDelivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())


def received(httpserver):
    return [json.loads(request.get_data()) for request, _response in httpserver.log]


def test_each_event_arrives_once_signed_with_timestamp_and_event_id(
    channel, subscribe, httpserver, django_capture_on_commit_callbacks
):
    subscribe(events=["message.created", "conversation.created"])
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    with django_capture_on_commit_callbacks() as callbacks:
        customer_writes(channel, "Hello, where is my order?")
    assert callbacks, "a kick is queued after commit"
    assert outgoing_webhooks.drain() == 2

    assert len(httpserver.log) == 2
    bodies = []
    for request, response in httpserver.log:
        raw = request.get_data()
        timestamp = request.headers["X-Switchboard-Timestamp"]
        assert timestamp.isdigit()
        signature = request.headers["X-Switchboard-Signature"]
        # What a receiver computes itself: HMAC-SHA256 of "<timestamp>.<raw body>".
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
        assert signature == "sha256=" + expected.hexdigest()
        assert outgoing_webhooks.verify(SECRET, timestamp, raw, signature)
        assert not outgoing_webhooks.verify("another secret", timestamp, raw, signature)
        assert not outgoing_webhooks.verify(SECRET, timestamp, raw + b" ", signature)
        body = json.loads(raw)
        assert request.headers["X-Switchboard-Event-Id"] == str(body["id"])
        assert request.headers["X-Switchboard-Event"] == body["type"]
        assert response.status_code == 200
        bodies.append(body)
    assert [b["type"] for b in bodies] == ["conversation.created", "message.created"]
    event = RealtimeEvent.objects.get(type="message.created")
    assert bodies[1]["id"] == event.pk and bodies[1]["data"] == event.payload
    assert bodies[1]["data"]["content"] == "Hello, where is my order?"
    deliveries = OutgoingWebhookDelivery.objects.order_by("event_id")
    assert [(d.state, d.attempts, d.last_status_code) for d in deliveries] == [
        ("delivered", 1, 200),
        ("delivered", 1, 200),
    ]
    assert OutgoingWebhookAttempt.objects.filter(ok=True, status_code=200).count() == 2
    assert outgoing_webhooks.drain() == 0 and len(httpserver.log) == 2  # nothing sent twice


def test_500_three_times_then_200_is_delivered_once_after_four_attempts(
    channel, subscribe, httpserver
):
    subscription = subscribe()
    for _ in range(3):
        httpserver.expect_ordered_request("/hook").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    customer_writes(channel, "Hi")
    delivery = OutgoingWebhookDelivery.objects.get()
    delays = []
    for attempt in range(1, 4):
        before = timezone.now()
        assert outgoing_webhooks.drain() == 0
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (
            "pending",
            attempt,
            500,
        )
        assert "HTTP 500: boom" in delivery.last_error
        delays.append((delivery.next_attempt_at - before).total_seconds())
        assert outgoing_webhooks.drain() == 0  # not due yet: nothing is sent
        make_due()
    # Exponential with jitter: each wait in the upper half of base·2^(n-1).
    base = 10.0
    for n, delay in enumerate(delays, start=1):
        assert base * 2 ** (n - 1) / 2 <= delay <= base * 2 ** (n - 1) + 1
    assert outgoing_webhooks.drain() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    ids = {body["id"] for body in received(httpserver)}
    assert len(httpserver.log) == 4 and ids == {delivery.event_id}
    statuses = list(
        OutgoingWebhookAttempt.objects.filter(delivery=delivery)
        .order_by("id")
        .values_list("status_code", flat=True)
    )
    assert statuses == [500, 500, 500, 200]
    subscription.refresh_from_db()  # the success ended the failing streak
    assert (subscription.consecutive_failures, subscription.failing_since) == (0, None)
    assert outgoing_webhooks.drain() == 0 and len(httpserver.log) == 4


def test_a_conversation_keeps_its_order_while_its_first_event_fails(channel, subscribe, httpserver):
    subscribe()
    failures = {"left": 3}
    first_event = {}

    def answer(request):
        body = json.loads(request.get_data())
        if body["id"] == first_event.get("id") and failures["left"]:
            failures["left"] -= 1
            return Response("try later", status=503)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(answer)
    customer_writes(channel, "one", sender="alice")
    customer_writes(channel, "two", "three", sender="alice")
    customer_writes(channel, "other", sender="bob")
    alice = list(
        OutgoingWebhookDelivery.objects.order_by("event_id").values_list("event_id", flat=True)
    )[:3]
    first_event["id"] = alice[0]
    for _ in range(5):
        outgoing_webhooks.drain()
        make_due()
    seen = [body["id"] for body in received(httpserver)]
    # bob's event went out at once; alice's later ones waited for her first.
    alice_seen = [event_id for event_id in seen if event_id in alice]
    assert alice_seen == [alice[0]] * 4 + [alice[1], alice[2]]
    bob = OutgoingWebhookDelivery.objects.exclude(event_id__in=alice).get()
    assert seen.index(bob.event_id) < seen.index(alice[1])
    assert set(OutgoingWebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}


def test_a_rolled_back_change_leaves_no_outbox_row(channel, subscribe):
    subscribe(events=list(outgoing_webhooks.EVENT_TYPES))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        customer_writes(channel, "never happened")
        assert OutgoingWebhookDelivery.objects.count() == 2  # conversation + message
        raise Abort
    assert OutgoingWebhookDelivery.objects.count() == 0
    assert RealtimeEvent.objects.count() == 0


def test_only_subscribed_types_of_active_subscriptions(channel, subscribe):
    wants_messages = subscribe(events=["message.created"])
    wants_conversations = subscribe(events=["conversation.created"], path="/other")
    subscribe(events=list(outgoing_webhooks.EVENT_TYPES), is_active=False, path="/off")
    customer_writes(channel, "hi", "again")
    rows = OutgoingWebhookDelivery.objects.values_list("subscription_id", "event_type")
    assert sorted(rows) == sorted(
        [
            (wants_messages.pk, "message.created"),
            (wants_messages.pk, "message.created"),
            (wants_conversations.pk, "conversation.created"),
        ]
    )


def test_the_outbox_costs_no_extra_statement_on_the_event_path(channel, subscribe):
    """Exact counts: ingesting a batch issues the same statements with or without
    subscriptions; the outbox rows ride on the realtime events' INSERT."""
    customer_writes(channel, "warm up", sender="warm")
    with CaptureQueriesContext(connection) as without:
        customer_writes(channel, "a", "b", sender="x")
    subscribe(events=list(outgoing_webhooks.EVENT_TYPES))
    subscribe(events=["message.created"], path="/second")
    with CaptureQueriesContext(connection) as with_two:
        customer_writes(channel, "c", "d", sender="y")
    assert len(with_two) == len(without), "\n".join(q["sql"][:200] for q in with_two)
    # conversation.created + 2 messages for the first; 2 messages for the second.
    assert OutgoingWebhookDelivery.objects.count() == 5


def test_contact_update_recorded_per_channel_is_sent_once(channel, subscribe):
    from communications import events

    subscribe(events=["contact.updated"])
    other = type(channel).objects.create(kind=channel.kind, name="Other")
    payload = {"id": 77, "name": "Ada"}
    events.record_events(
        [
            (events.CONTACT_UPDATED, channel.pk, None, payload),
            (events.CONTACT_UPDATED, other.pk, None, payload),
        ]
    )
    assert OutgoingWebhookDelivery.objects.count() == 1


def test_a_subscription_failing_for_the_whole_window_is_disabled_and_admins_mailed(
    channel, subscribe, httpserver, settings
):
    settings.OUTGOING_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.ADMINS = [("Ops", "ops@example.com")]
    subscription = subscribe()
    httpserver.expect_request("/hook").respond_with_data("down", status=502)
    customer_writes(channel, "first", sender="a")
    customer_writes(channel, "second", sender="b")
    for _ in range(2):
        outgoing_webhooks.drain()
        make_due()
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.consecutive_failures == 4
    assert mail.outbox == []
    # A day passes with every attempt failing.
    day_ago = timezone.now() - timedelta(hours=24, minutes=1)
    OutgoingWebhookDelivery.objects.update(give_up_after=day_ago)
    type(subscription).objects.filter(pk=subscription.pk).update(failing_since=day_ago)
    outgoing_webhooks.drain()

    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "6 deliveries in a row failed" in subscription.disabled_reason
    assert "HTTP 502: down" in subscription.disabled_reason
    assert set(OutgoingWebhookDelivery.objects.values_list("state", flat=True)) == {"failed"}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert subscription.url in mail.outbox[0].body
    sent = len(httpserver.log)
    customer_writes(channel, "while disabled", sender="c")
    assert OutgoingWebhookDelivery.objects.count() == 2  # a disabled subscription gets none
    outgoing_webhooks.drain()
    assert len(httpserver.log) == sent


def test_redeliver_sends_the_same_event_again(channel, subscribe, httpserver):
    subscribe()
    httpserver.expect_request("/hook").respond_with_data("ok")
    customer_writes(channel, "hi")
    outgoing_webhooks.drain()
    delivery = OutgoingWebhookDelivery.objects.get()
    assert outgoing_webhooks.redeliver([delivery.pk]) == 1
    assert outgoing_webhooks.drain() == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 2
    assert [b["id"] for b in received(httpserver)] == [delivery.event_id] * 2


def test_a_killed_workers_claim_is_taken_again_after_its_lease(channel, subscribe, httpserver):
    subscribe()
    httpserver.expect_request("/hook").respond_with_data("ok")
    customer_writes(channel, "hi")
    claimed = outgoing_webhooks.claim_batch()
    assert len(claimed) == 1
    assert outgoing_webhooks.claim_batch() == []  # held by the (now dead) first worker
    OutgoingWebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert outgoing_webhooks.drain() == 1
    assert OutgoingWebhookDelivery.objects.get().attempts == 2


def test_a_batch_costs_the_same_statements_whatever_its_size(channel, subscribe, httpserver):
    """The worker's cost per batch is fixed: claim (SELECT … FOR UPDATE SKIP LOCKED, UPDATE),
    read deliveries and events, one INSERT of attempts, one UPDATE of the delivered."""
    subscribe()
    httpserver.expect_request("/hook").respond_with_data("ok")

    def drain_counting(senders):
        for sender in senders:
            customer_writes(channel, "hello", sender=sender)
        with CaptureQueriesContext(connection) as queries:
            assert outgoing_webhooks.send_claimed(outgoing_webhooks.claim_batch()) == len(senders)
        return [q["sql"].split()[0] for q in queries]

    one = drain_counting(["solo"])
    five = drain_counting([f"s{n}" for n in range(5)])
    assert one == five
    assert one == [
        "SAVEPOINT",
        "SELECT",
        "UPDATE",
        "RELEASE",
        "SELECT",
        "SELECT",
        "INSERT",
        "UPDATE",
    ], one


def test_events_are_kept_while_their_deliveries_may_retry(settings):
    from communications.tasks import prune_realtime_events

    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "REALTIME_EVENT_RETENTION_HOURS": 2}
    event = RealtimeEvent.objects.create(type="message.created", payload={})
    RealtimeEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(hours=20)
    )
    assert prune_realtime_events() == 0  # a 24 h retry window still needs its body
    RealtimeEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(hours=26)
    )
    assert prune_realtime_events() == 1
