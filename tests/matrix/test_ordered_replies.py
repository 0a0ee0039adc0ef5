"""A burst of replies reaches the bridge in the order the manager wrote them, with a real
worker and a homeserver that stops mid-burst and comes back.

Before per-conversation order every message retried on its own jittered timer, and the
bridge received 0,1,2,48,39,38,28… after an outage. Now a reply is handed to the homeserver
only once every earlier reply of its conversation has settled.
"""

import time

import pytest

from communications.models import Conversation, Message
from communications.services.send import send_message
from integrations.matrix.models import MatrixRoom
from tests.reliability.conftest import broker_queue, worker_factory  # noqa: F401
from tests.webhooks.test_drainer import DrainerThread

from .conftest import connect_manager
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15557650020"


@pytest.fixture
def drainer(transactional_db, worker_factory):  # noqa: F811
    """With a real worker Celery is not eager: the appservice's transactions (the QR code, the
    bridge's statuses and receipts) wait in the webhook log for a drainer, as in production."""
    thread = DrainerThread(poll_seconds=0.5).start()
    yield thread
    thread.stop()


def test_a_burst_with_a_homeserver_restart_arrives_in_order_once(
    stack,
    worker_factory,  # noqa: F811
    drainer,
    monkeypatch,
):
    # The head of the line retries through the outage (~0.2 s doubling, up to ~6 s apart).
    monkeypatch.setenv("SEND_MAX_RETRIES", "12")
    stack.configure(auth_mode="admin_login")
    user, connection = connect_manager(stack, f"order-{time.monotonic_ns()}")
    room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Olga")
    stack.bridge.send_text(room, CUSTOMER, "hi")  # the portal joins once a message arrives
    wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), what="joined", timeout=30)
    conversation = wait_until(
        lambda: Conversation.objects.filter(external_id=room).first(), what="the conversation"
    )
    worker = worker_factory(concurrency=4)
    worker.start()

    ids = []
    for n in range(20):
        if n == 6:
            wait_until(lambda: len(stack.bridge.delivered_in(room)) >= 2, 60, "the first sends")
            stack.synapse.stop()
        outcome = send_message(
            conversation=conversation, user=user, client_id=f"burst-{n}", content=f"reply {n}"
        )
        ids.append(outcome.message.pk)
    time.sleep(2)  # the line's head meets the outage and backs off
    stack.synapse.start()

    wait_until(
        lambda: not Message.objects.filter(pk__in=ids, status__in=["pending", "sending"]).exists(),
        150,
        "every reply to settle",
    )
    statuses = dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert set(statuses.values()) <= {"sent", "delivered", "read"}, statuses
    wait_until(lambda: len(stack.bridge.delivered_in(room)) >= 20, 30, "20 replies at the bridge")
    bodies = [d["content"]["body"] for d in stack.bridge.delivered_in(room)]
    assert bodies == [f"reply {n}" for n in range(20)]
