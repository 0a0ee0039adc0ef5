"""The one ingest path: stored once, whatever arrives twice or at once."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from communications import events
from communications.models import Channel, ContactIdentity, Conversation, Message, RealtimeEvent
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
    ingest_messages,
)
from crm.models import Contact
from tests import factories

pytestmark = pytest.mark.django_db


def inbound(sender="cust-1", text="Hello", **kwargs) -> InboundMessage:
    return InboundMessage(
        sender=InboundSender(external_id=sender, name="Ann"), content=text, **kwargs
    )


def test_first_message_creates_contact_identity_conversation_and_message(channel):
    result = ingest_message(channel, inbound(external_id="m-1"))

    assert result.created and result.conversation_created
    conversation = result.message.conversation
    assert conversation.external_id == "cust-1"
    assert conversation.unread_count == 1
    assert conversation.last_message_preview == "Hello"
    assert conversation.contact.name == "Ann"
    assert ContactIdentity.objects.get(channel=channel, external_id="cust-1").contact_id == (
        conversation.contact_id
    )
    assert result.message.status == Message.Status.RECEIVED


def test_redelivery_by_provider_id_is_stored_once(channel):
    first = ingest_message(channel, inbound(external_id="m-1"))
    again = ingest_message(channel, inbound(external_id="m-1", text="Hello (retried)"))

    assert not again.created
    assert again.message.pk == first.message.pk
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


def test_same_id_on_another_channel_is_another_message(channel):
    other = factories.ChannelFactory()
    ingest_message(channel, inbound(external_id="m-1"))
    ingest_message(other, inbound(external_id="m-1"))
    assert Message.objects.count() == 2


def test_without_id_sender_and_timestamp_deduplicate(channel):
    moment = timezone.now() - timedelta(minutes=5)
    first = ingest_message(channel, inbound(timestamp=moment))
    again = ingest_message(channel, inbound(timestamp=moment))
    later = ingest_message(channel, inbound(timestamp=moment + timedelta(seconds=1)))

    assert again.message.pk == first.message.pk
    assert later.created
    assert Message.objects.count() == 2


def test_without_id_or_timestamp_same_text_within_window_is_a_duplicate(channel):
    first = ingest_message(channel, inbound(text="Are you there?"))
    again = ingest_message(channel, inbound(text="Are you there?"))
    different = ingest_message(channel, inbound(text="Hello?"))

    assert again.message.pk == first.message.pk
    assert different.created
    # Outside the window the same text is a new message.
    Message.objects.filter(pk=first.message.pk).update(
        created_at=timezone.now() - timedelta(seconds=11)
    )
    assert ingest_message(channel, inbound(text="Are you there?")).created


def test_batch_ingest_keeps_order_and_dedups_inside_the_batch(channel):
    results = ingest_messages(
        channel,
        [inbound(external_id="a"), inbound(external_id="b"), inbound(external_id="a")],
    )
    assert [r.created for r in results] == [True, True, False]
    assert results[2].message.pk == results[0].message.pk
    assert Conversation.objects.get().unread_count == 2


def test_resolved_conversation_reopens_on_a_new_message(channel):
    first = ingest_message(channel, inbound(external_id="a"))
    Conversation.objects.filter(pk=first.message.conversation_id).update(status="resolved")
    ingest_message(channel, inbound(external_id="b"))
    assert Conversation.objects.get().status == Conversation.Status.OPEN


def test_phone_learnt_later_completes_the_same_contact(channel):
    ingest_message(
        channel, InboundMessage(sender=InboundSender("lid-1"), content="hi", external_id="a")
    )
    ingest_message(
        channel,
        InboundMessage(
            sender=InboundSender("lid-1", name="Bob", phone="+15551234567"),
            content="it's me",
            external_id="b",
        ),
    )
    contact = Contact.objects.get()
    assert (contact.name, contact.phone) == ("Bob", "+15551234567")


def test_outbound_from_elsewhere_is_stored_as_sent_not_inbound(channel):
    ingest_message(channel, inbound(external_id="a"))
    result = ingest_message(
        channel, inbound(external_id="b", text="sent from my phone", direction="out")
    )
    assert result.message.direction == Message.Direction.OUTBOUND
    assert result.message.status == Message.Status.SENT
    assert result.message.sender_contact is None
    assert Conversation.objects.get().unread_count == 1


def test_attachment_is_stored_with_the_message(
    channel, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_message(
            channel,
            inbound(
                external_id="img",
                text="",
                kind="image",
                attachments=(InboundAttachment("image/png", "p.png", data=b"\x89PNG fake"),),
            ),
        )
    attachment = result.message.attachments.get()
    assert attachment.size == 9
    assert attachment.file.read() == b"\x89PNG fake"
    assert result.message.conversation.last_message_preview == "[Image]"


def test_reply_to_links_the_provider_id(channel):
    first = ingest_message(channel, inbound(external_id="a"))
    reply = ingest_message(channel, inbound(external_id="b", reply_to_external_id="a"))
    assert reply.message.reply_to_id == first.message.pk


def test_events_are_recorded_in_order_and_sent_only_after_commit(
    channel, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(events, "broadcast_events", lambda items: sent.extend(items))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest_message(channel, inbound(external_id="a"))
        assert sent == []
    for callback in callbacks:
        callback()
    types = [event["type"] for _, event in sent]
    assert types == ["conversation.created", "message.created"]
    assert {channel_id for channel_id, _ in sent} == {channel.pk}
    ids = [event["id"] for _, event in sent]
    assert (
        ids
        == sorted(ids)
        == list(RealtimeEvent.objects.order_by("id").values_list("id", flat=True))
    )


def test_duplicate_sends_no_event(channel, django_capture_on_commit_callbacks):
    ingest_message(channel, inbound(external_id="a"))
    with django_capture_on_commit_callbacks() as callbacks:
        ingest_message(channel, inbound(external_id="a"))
    assert callbacks == []


def test_ingest_query_count_into_existing_conversation(channel, count_queries):
    ingest_message(channel, inbound(external_id="a"))
    with count_queries() as queries:
        ingest_message(channel, inbound(external_id="b"))
    # savepoint, identity, locked conversation, dedup check, insert message, update
    # conversation, both events in one insert, release savepoint.
    assert queries.count == 8, queries.explain()


def test_a_batch_costs_a_fixed_number_of_statements(
    channel, count_queries, django_capture_on_commit_callbacks
):
    if connection.vendor != "postgresql":
        pytest.skip("the batch statements are PostgreSQL's (SQLite updates row by row)")
    senders = [f"cust-{n}" for n in range(10)]
    ingest_messages(channel, [inbound(sender=s, external_id=f"first-{s}") for s in senders])
    # Assigned conversations: their assignee's name is in every conversation payload.
    for n, conversation in enumerate(Conversation.objects.all()):
        conversation.assignee = factories.UserFactory(username=f"agent-{n}")
        conversation.save()
    batch = [inbound(sender=senders[n % 10], external_id=f"m-{n}") for n in range(100)]
    with count_queries() as queries, django_capture_on_commit_callbacks() as callbacks:
        results = ingest_messages(channel, batch)
    assert all(r.created for r in results)
    # savepoint, identities, locked conversations, dedup, one insert, one update of the 10
    # conversations, one events insert, release savepoint.
    assert queries.count == 8, queries.explain()
    assert len(callbacks) == 1
    assert Conversation.objects.get(external_id="cust-3").unread_count == 11
    assert RealtimeEvent.objects.filter(type="message.created").count() == 110


def test_a_batch_of_new_customers_costs_a_fixed_number_of_statements(channel, count_queries):
    if connection.vendor != "postgresql":
        pytest.skip("the batch statements are PostgreSQL's (SQLite inserts row by row)")

    def statements_for(customers: int) -> int:
        batch = [
            inbound(sender=f"new-{customers}-{n % customers}", external_id=f"{customers}-{n}")
            for n in range(100)
        ]
        with count_queries() as queries:
            results = ingest_messages(channel, batch)
        assert all(r.created for r in results)
        assert sum(r.conversation_created for r in results) == customers
        return queries.count

    # savepoint, identities, contacts insert, identities insert, locked conversations,
    # conversations insert, dedup, messages insert, conversations update, events, release.
    assert statements_for(5) == statements_for(50) == 11
    assert Contact.objects.count() == ContactIdentity.objects.count() == 55
    assert sorted(set(Conversation.objects.values_list("unread_count", flat=True))) == [2, 20]


def test_a_batch_with_a_new_customer_announces_the_conversation_before_its_messages(
    channel, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(events, "broadcast_events", lambda items: sent.extend(items))
    with django_capture_on_commit_callbacks(execute=True):
        results = ingest_messages(
            channel,
            [inbound(sender="new", external_id="1"), inbound(sender="new", external_id="2")],
        )
    assert [r.conversation_created for r in results] == [True, False]
    types = [event["type"] for _, event in sent]
    assert types == ["conversation.created", "message.created", "message.created"]
    assert sent[0][1]["data"]["unread_count"] == 2


def test_reply_to_a_message_of_the_same_batch(channel):
    first, reply = ingest_messages(
        channel, [inbound(external_id="q"), inbound(external_id="r", reply_to_external_id="q")]
    )
    reply.message.refresh_from_db()
    assert reply.message.reply_to_id == first.message.pk


def test_historical_messages_neither_count_nor_reopen(channel):
    now = timezone.now()
    live = ingest_message(channel, inbound(external_id="live", text="latest"))
    Conversation.objects.filter(pk=live.message.conversation_id).update(status="resolved")
    ingest_message(
        channel,
        inbound(external_id="old", text="old", timestamp=now - timedelta(days=3), historical=True),
    )
    conversation = Conversation.objects.get()
    assert (conversation.unread_count, conversation.status) == (1, "resolved")
    assert conversation.last_message_preview == "latest"


def test_new_conversation_from_history_sorts_by_its_history(channel):
    long_ago = timezone.now() - timedelta(days=30)
    ingest_message(channel, inbound(external_id="h", timestamp=long_ago, historical=True))
    assert Conversation.objects.get().last_message_at == long_ago


def _run_concurrently(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker(index: int):
        try:
            barrier.wait(timeout=30)
            results.append(work(index))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def _alone(channel, item):
    """What separate server processes do: each call its own transaction, racing the others."""
    return ingest_messages(channel, [item])[0]


# Both ways in: single calls racing in their own transactions (as separate processes race), and
# `ingest_message`, whose concurrent calls in one process share batches.
ENTRY_POINTS = pytest.mark.parametrize("ingest_one", [_alone, ingest_message])


@ENTRY_POINTS
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_deliveries_of_one_message_store_exactly_one(channel, ingest_one):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (scripts/test provides one)")
    ingest_one(channel, inbound(sender="cust-9", external_id="warmup"))

    results = _run_concurrently(
        50, lambda i: ingest_one(channel, inbound(sender="cust-9", external_id="dup"))
    )

    assert sum(r.created for r in results) == 1
    assert Message.objects.filter(external_id="dup").count() == 1
    assert Conversation.objects.get().unread_count == 2


@ENTRY_POINTS
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_first_messages_create_one_contact_and_one_conversation(
    channel, ingest_one
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (scripts/test provides one)")

    results = _run_concurrently(
        50, lambda i: ingest_one(channel, inbound(sender="new-customer", external_id=f"m-{i}"))
    )

    assert len(results) == 50
    assert Contact.objects.count() == 1
    assert ContactIdentity.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 50
    assert Conversation.objects.get().unread_count == 50
    assert sum(r.conversation_created for r in results) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_messages_share_batches_and_each_caller_gets_its_own(
    channel, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (scripts/test provides one)")
    from communications.services import ingest as ingest_module

    coalescer = ingest_module._concurrent_single_messages
    batch_sizes = []
    run_batch = coalescer.run_batch

    def slow_first_batch(target, items):
        batch_sizes.append(len(items))
        if len(batch_sizes) == 1:
            time.sleep(0.3)  # the other callers arrive meanwhile and queue up
        return run_batch(target, items)

    monkeypatch.setattr(coalescer, "run_batch", slow_first_batch)
    results = _run_concurrently(
        30, lambda i: (i, ingest_message(channel, inbound(sender=f"c-{i % 3}", external_id=f"{i}")))
    )

    assert all(result.message.external_id == str(i) for i, result in results)
    assert all(result.created and result.message.pk for _, result in results)
    assert Message.objects.count() == 30
    assert sorted(Conversation.objects.values_list("unread_count", flat=True)) == [10, 10, 10]
    assert sum(batch_sizes) == 30 and len(batch_sizes) < 30, batch_sizes


def _beside_an_open_transaction(hold, other, keep_open):
    """Runs `hold()` in a transaction, and `other()` in a second connection once `hold()` has
    returned; the transaction commits when `keep_open(other_done)` returns. Returns both
    results; fails with what either raised."""
    from django.db import transaction

    holding, other_done, results = threading.Event(), threading.Event(), {}

    def holder():
        try:
            with transaction.atomic():
                results["held"] = hold()
                holding.set()
                keep_open(other_done)
        except Exception as exc:  # asserted below
            results["error"] = exc
        finally:
            holding.set()
            connection.close()

    def second():
        try:
            results["other"] = other()
        except Exception as exc:  # asserted below
            results["error"] = exc
        finally:
            other_done.set()
            connection.close()

    first_thread = threading.Thread(target=holder)
    first_thread.start()
    assert holding.wait(timeout=30)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)
    assert "error" not in results, results.get("error")
    return results["held"], results["other"]


@pytest.mark.django_db(transaction=True)
def test_ingest_locks_only_its_conversation_not_the_channel_or_contact(channel):
    """Two customers of one channel are ingested side by side, not one after the other."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from django.db import transaction

    ingest_message(channel, inbound(sender="a", external_id="a-0"))
    ingest_message(channel, inbound(sender="b", external_id="b-0"))

    def ingest_b_within_two_seconds():
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            return ingest_message(channel, inbound(sender="b", external_id="b-1"))

    _, b = _beside_an_open_transaction(
        lambda: ingest_message(channel, inbound(sender="a", external_id="a-1")),
        ingest_b_within_two_seconds,
        keep_open=lambda other_done: other_done.wait(timeout=30),
    )
    assert b.created


def _race_with_an_uncommitted_delivery(channel, first: InboundMessage, second: InboundMessage):
    """`first` is ingested in a transaction held open until `second`, in another connection,
    is waiting on the rows it inserted; then `first` commits. Returns both results."""
    return _beside_an_open_transaction(
        lambda: ingest_messages(channel, [first])[0],
        lambda: ingest_messages(channel, [second])[0],
        keep_open=lambda other_done: _wait_for_a_lock_wait(),
    )


def _wait_for_a_lock_wait():
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second delivery never waited on the first one's rows")


@pytest.mark.django_db(transaction=True)
def test_a_new_customer_created_meanwhile_by_another_delivery_is_used_not_doubled(channel):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (scripts/test provides one)")
    first, second = _race_with_an_uncommitted_delivery(
        channel,
        inbound(sender="new-customer", external_id="one"),
        inbound(sender="new-customer", external_id="two"),
    )
    # The second delivery made a contact of its own before it lost the identity's unique
    # constraint to the first: that contact is gone again.
    assert Contact.objects.count() == ContactIdentity.objects.count() == 1
    assert second.message.sender_contact_id == first.message.sender_contact_id
    assert (first.conversation_created, second.conversation_created) == (True, False)
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 2 and conversation.messages.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_chat_created_meanwhile_by_another_delivery_is_locked_and_used_not_doubled(channel):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL (scripts/test provides one)")
    first, second = _race_with_an_uncommitted_delivery(
        channel,
        inbound(sender="alice", conversation_external_id="group-1", external_id="a"),
        inbound(sender="bob", conversation_external_id="group-1", external_id="b"),
    )
    assert Contact.objects.count() == 2
    assert (first.conversation_created, second.conversation_created) == (True, False)
    assert first.message.conversation_id == second.message.conversation_id
    assert Conversation.objects.get().unread_count == 2


@pytest.mark.django_db(transaction=True)
def test_callers_waiting_for_a_batch_give_their_pooled_connection_back(channel, monkeypatch):
    """A flood holds far more requests than the pool has connections: only the batch's leader
    keeps one while the others wait for it."""
    pool = getattr(connection, "pool", None)
    if pool is None:
        pytest.skip("needs PostgreSQL with Django's connection pool (scripts/test provides one)")
    from communications.services import ingest as ingest_module

    def connections_in_use() -> int:
        stats = pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    coalescer = ingest_module._concurrent_single_messages
    run_batch, during_first_batch = coalescer.run_batch, []

    def slow_first_batch(target, items):
        if not during_first_batch:
            time.sleep(0.5)  # every other caller queues up meanwhile
            during_first_batch.append(connections_in_use())
        return run_batch(target, items)

    monkeypatch.setattr(coalescer, "run_batch", slow_first_batch)

    def request(i):
        Channel.objects.filter(pk=channel.pk).exists()  # the view's own query takes a connection
        return ingest_message(channel, inbound(sender=f"c-{i % 3}", external_id=f"{i}"))

    before = connections_in_use()  # this test's own, and any other test's threads left open
    results = _run_concurrently(30, request)
    assert all(r.created for r in results) and Message.objects.count() == 30
    # Only the leader holds one more; the 29 callers waiting for its batch hold none.
    assert during_first_batch[0] - before <= 1, (before, during_first_batch)
