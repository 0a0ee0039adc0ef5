"""The sync path (`manage.py matrix_sync`'s service), and a homeserver restart under both paths.

Synapse is stopped for a few seconds rather than 30: what matters is that it was down while
events were queued and requests failed; the behaviour (a transaction Switchboard could not
process stays in its webhook log and is retried; Synapse keeps what it could not push; the sync
resumes from the stored next_batch) does not depend on the length of the outage.
"""

import time

import pytest
from django.utils import timezone

from communications.models import Contact, Conversation, Message, WebhookDelivery
from communications.services.send import send_message
from communications.tasks import deliver_message
from integrations.base import TemporaryDeliveryError
from integrations.matrix import mapper
from integrations.matrix.client import MatrixUnavailable
from integrations.matrix.models import MatrixConnection, MatrixRoom
from integrations.matrix.provider import MatrixProvider

from .conftest import connect_manager, whatsapp_channel
from .stack import SyncRunner, wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15557654321"


def test_sync_path_alone_connects_and_ingests(stack):
    stack.configure(auth_mode="admin_login", with_hs_token=False)  # appservice answers 503
    with SyncRunner():
        user, connection = connect_manager(stack, f"sync-{time.monotonic_ns()}")
        room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Carol")
        wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), what="joined")
        ids = [
            stack.bridge.send_text(room, CUSTOMER, "via sync"),
            stack.bridge.send_image(room, CUSTOMER),
        ]
        wait_until(lambda: Message.objects.filter(external_id__in=ids).count() == 2)
        conversation = Conversation.objects.get(external_id=room)
        send_message(conversation=conversation, user=user, client_id="sy-1", content="got it")
        wait_until(lambda: Message.objects.get(client_id="sy-1").status == "delivered")
    connection.refresh_from_db()
    assert connection.sync_next_batch and connection.last_synced_at
    assert Contact.objects.get().phone == f"+{CUSTOMER}"
    assert stack.bridge.delivered_in(room)[0]["content"]["body"] == "got it"


def message_sent_at(message):
    return Message.objects.get(pk=message.pk).updated_at


def test_homeserver_restart_loses_nothing_and_doubles_nothing(stack, monkeypatch):
    stack.configure(auth_mode="admin_login")
    stack.kick_appservice()
    with SyncRunner():
        user, connection = connect_manager(stack, f"rs-{time.monotonic_ns()}")
        room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Dave")
        wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), what="joined")
        before = stack.bridge.send_text(room, CUSTOMER, "before the outage")
        wait_until(lambda: Message.objects.filter(external_id=before).exists())

    # Sync stopped; processing the appservice's transactions fails: the webhook log keeps the
    # transaction (Synapse got its 200) and retries it after a backoff.
    def unavailable(*args, **kwargs):
        raise MatrixUnavailable("simulated outage")

    monkeypatch.setattr(mapper, "handle_events", unavailable)
    queued = stack.bridge.send_text(room, CUSTOMER, "sent while Switchboard was failing")
    waiting = WebhookDelivery.objects.filter(
        source="matrix", outcome="processing", reason__contains="simulated outage"
    )
    wait_until(waiting.exists, what="the transaction kept for a retry")
    assert not Message.objects.filter(external_id=queued).exists()

    stack.synapse.stop()
    conversation = Conversation.objects.get(external_id=room)
    # While the homeserver is down a send is a temporary failure (the task would retry).
    monkeypatch.setattr("communications.services.send.queue_delivery", lambda *a, **k: None)
    send_message(conversation=conversation, user=user, client_id="down-1", content="hello?")
    message = Message.objects.get(client_id="down-1")
    with pytest.raises(TemporaryDeliveryError):
        MatrixProvider(whatsapp_channel()).send(message)
    time.sleep(3)
    stack.synapse.start()
    monkeypatch.undo()
    waiting.update(lease_until=timezone.now())  # its backoff is over: the next drain retries it
    # Synapse starts its appservice recoverers with the first new event after a restart.
    after = stack.bridge.send_text(room, CUSTOMER, "after the outage")
    stack.kick_appservice()

    # The new transaction's drain takes the kept one too, oldest first.
    wait_until(
        lambda: Message.objects.filter(external_id__in=[queued, after]).count() == 2,
        what="the retried transaction and the new one",
    )
    assert deliver_message(message.pk) == "sent"  # the retry after the outage
    with SyncRunner():  # resumes from the stored next_batch: sees everything again
        wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered")
        wait_until(
            lambda: (
                MatrixConnection.objects.get(pk=connection.pk).last_synced_at
                > message_sent_at(message)
            ),
            what="a sync after the restart",
        )
        time.sleep(1.0)  # both paths have had their chance to double something
    texts = list(
        Message.objects.filter(conversation=conversation)
        .order_by("created_at", "pk")
        .values_list("content", flat=True)
    )
    assert sorted(texts) == sorted(
        ["before the outage", "sent while Switchboard was failing", "hello?", "after the outage"]
    )
    assert [d["content"]["body"] for d in stack.bridge.delivered_in(room)] == ["hello?"]
    assert MatrixConnection.objects.get(pk=connection.pk).state == "connected"
