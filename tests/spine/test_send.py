"""The one send path: stored first, delivered after commit, retried, forward-only."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from communications.models import EarlyStatus, Message
from communications.services.send import (
    SendRejected,
    retry_delay,
    retry_failed_message,
    send_message,
    update_message_status,
    update_status_by_external_id,
)
from communications.tasks import deliver_message
from tests import factories

pytestmark = pytest.mark.django_db


class CallbackServer:
    """A real HTTP server on loopback standing in for an integrator's callback endpoint."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                status = outer.statuses.pop(0) if outer.statuses else 200
                payload = json.dumps({"id": f"remote-{len(outer.requests)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback():
    server = CallbackServer()
    yield server
    server.close()


@pytest.fixture
def conversation(manager, channel, callback):
    channel.config = {"callback_url": callback.url}
    channel.secrets = {**channel.secrets, "callback_secret": "s3cret"}
    channel.save()
    return factories.ConversationFactory(channel=channel)


def test_send_stores_pending_then_delivers_after_commit(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = send_message(
            conversation=conversation, user=manager, client_id="c-1", content="Hi there"
        )
        assert outcome.message.status == Message.Status.PENDING
        assert callback.requests == []
    for run in callbacks:
        run()
    message = Message.objects.get()
    assert message.status == Message.Status.SENT
    assert message.external_id == "remote-1"
    request = callback.requests[0]
    expected = "sha256=" + hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Switchboard-Signature"] == expected
    assert json.loads(request["body"])["message"]["text"] == "Hi there"


def test_same_client_id_returns_the_same_message_and_sends_once(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    with django_capture_on_commit_callbacks(execute=True) as again_callbacks:
        again = send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert again_callbacks == []
    assert Message.objects.count() == 1
    assert len(callback.requests) == 1


def test_client_id_of_another_conversation_is_rejected(conversation, manager):
    send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    other = factories.ConversationFactory(channel=conversation.channel)
    with pytest.raises(SendRejected, match="another conversation"):
        send_message(conversation=other, user=manager, client_id="c-1", content="A")


def test_empty_message_is_rejected(conversation, manager):
    with pytest.raises(SendRejected, match="needs text"):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="  ")
    assert Message.objects.count() == 0


def test_temporary_errors_are_retried_until_delivered(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    callback.statuses = [503, 502]
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    message = Message.objects.get()
    assert message.status == Message.Status.SENT
    assert message.send_attempts == 3
    assert len(callback.requests) == 3


def test_permanent_error_fails_with_a_readable_reason_and_can_be_retried(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    callback.statuses = [422]
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "HTTP 422" in message.failure_reason
    assert message.send_attempts == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert retry_failed_message(message)
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.failure_reason == ""


def test_gives_up_after_max_retries(
    conversation, manager, callback, settings, django_capture_on_commit_callbacks
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "SEND_MAX_RETRIES": 2}
    callback.statuses = [500, 500, 500, 500]
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "gave up after 3 attempts" in message.failure_reason
    assert len(callback.requests) == 3


def test_unreachable_callback_is_temporary(conversation, manager, settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "SEND_MAX_RETRIES": 0}
    conversation.channel.config = {"callback_url": "http://127.0.0.1:9/nothing-listens"}
    conversation.channel.save()
    outcome = send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    assert deliver_message(outcome.message.pk) == "failed"
    outcome.message.refresh_from_db()
    assert outcome.message.failure_reason.startswith("callback unreachable")


def test_delivering_twice_sends_once(conversation, manager, callback):
    outcome = send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    assert deliver_message(outcome.message.pk) == "sent"
    assert deliver_message(outcome.message.pk) == "skipped"
    assert len(callback.requests) == 1


def test_private_note_is_never_sent(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = send_message(
            conversation=conversation, user=manager, client_id="n-1", content="VIP", kind="note"
        )
    assert outcome.message.kind == Message.Kind.NOTE
    assert callback.requests == []


def test_channel_kind_without_provider_fails_with_a_clear_reason(
    manager, monkeypatch, django_capture_on_commit_callbacks
):
    from communications import providers

    # Every kind has a provider by now: take one away, as a version without it would be.
    monkeypatch.delitem(providers._FACTORIES, "messenger", raising=False)
    conversation = factories.ConversationFactory(channel=factories.ChannelFactory(kind="messenger"))
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="A")
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "Messenger" in message.failure_reason and "not available" in message.failure_reason


@pytest.mark.parametrize(
    "sequence, final",
    [
        (["sent", "delivered", "read"], "read"),
        (["sent", "read", "delivered"], "read"),
        (["read", "sent"], "read"),
        (["delivered", "failed"], "delivered"),
        (["sent", "failed"], "failed"),
        (["failed", "sent"], "failed"),
    ],
)
def test_delivery_status_only_moves_forward(conversation, sequence, final):
    # Sent: the provider's answer stored the id (a pending message with an id is a retry).
    message = factories.MessageFactory(
        conversation=conversation, direction="out", status="sent", external_id="wamid.1"
    )
    for status in sequence:
        update_status_by_external_id(conversation.channel_id, "wamid.1", status)
    message.refresh_from_db()
    assert message.status == final


def test_repeated_status_records_no_second_event(conversation, django_capture_on_commit_callbacks):
    message = factories.MessageFactory(conversation=conversation, direction="out", status="sent")
    with django_capture_on_commit_callbacks() as callbacks:
        assert update_message_status(message.pk, "delivered")
        assert not update_message_status(message.pk, "delivered")
    assert len(callbacks) == 1


def test_retry_delay_grows_exponentially_with_jitter(settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "SEND_RETRY_BASE_SECONDS": 2.0}
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (6, 64)]:
        delays = [retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_a_status_that_overtakes_the_send_waits_for_the_id(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    """The provider's status names an id before the send stored it: it is kept, applied once
    the send stores the id, and not kept again."""
    with django_capture_on_commit_callbacks(execute=True):
        assert not update_status_by_external_id(conversation.channel_id, "remote-1", "delivered")
        assert not update_status_by_external_id(conversation.channel_id, "remote-1", "delivered")
    assert EarlyStatus.objects.count() == 1  # a repeated early status is kept once
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=conversation, user=manager, client_id="c-1", content="Hi")
    message = Message.objects.get()
    assert (message.external_id, message.status) == ("remote-1", "delivered")
    assert not EarlyStatus.objects.exists()


def test_an_id_stored_while_the_status_was_being_kept_is_seen_after_commit(
    conversation, monkeypatch, django_capture_on_commit_callbacks
):
    """The send stores the id between the status's look-up and its write: the status looks
    again once its write is committed, so neither side misses the other."""
    from communications.services import send

    message = factories.MessageFactory(
        conversation=conversation, direction="out", status="sent", external_id="remote-9"
    )
    real_lookup = send._message_id_for
    lookups = []

    def first_lookup_misses(channel_id, external_id):
        lookups.append(external_id)
        return None if len(lookups) == 1 else real_lookup(channel_id, external_id)

    monkeypatch.setattr(send, "_message_id_for", first_lookup_misses)
    with django_capture_on_commit_callbacks(execute=True):
        update_status_by_external_id(conversation.channel_id, "remote-9", "read")
    message.refresh_from_db()
    assert message.status == "read"
    assert not EarlyStatus.objects.exists()


def test_early_statuses_whose_id_never_came_are_pruned():
    from datetime import timedelta

    from django.utils import timezone

    from communications.tasks import prune_early_statuses

    channel = factories.ChannelFactory()
    for n in range(3):
        EarlyStatus.objects.create(channel=channel, external_id=f"old-{n}", status="read")
    EarlyStatus.objects.update(created_at=timezone.now() - timedelta(days=2))
    recent = EarlyStatus.objects.create(channel=channel, external_id="new", status="read")
    assert prune_early_statuses(batch_size=2) == 3
    assert list(EarlyStatus.objects.values_list("pk", flat=True)) == [recent.pk]


def test_late_news_of_a_failed_attempt_does_not_fail_its_retry(
    conversation, manager, callback, django_capture_on_commit_callbacks
):
    message = factories.MessageFactory(
        conversation=conversation,
        direction="out",
        status="failed",
        failure_reason="not bridged",
        external_id="remote-old",
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert retry_failed_message(message)  # pending again, not yet handed to the provider
    # a second failure signal for the old attempt arrives now
    with django_capture_on_commit_callbacks(execute=True):
        update_status_by_external_id(conversation.channel_id, "remote-old", "failed", "again")
    message.refresh_from_db()
    assert message.status == "pending"
    assert deliver_message(message.pk) == "sent"
    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "remote-1")
