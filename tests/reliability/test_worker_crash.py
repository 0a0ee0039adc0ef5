"""Real `celery -A crm worker` processes killed with SIGKILL while they send: every reply
reaches the receiver exactly once, or is visibly "unknown" (at most once) — never twice.

The API channel's callback is the provider: a local HTTP server that counts what arrives and
kills the worker's whole process group the moment a chosen request arrives (after the
provider received it, before the worker hears the answer).
"""

import re
import threading
import time
from pathlib import Path

import pytest

from communications.models import Message
from communications.services.send import send_message
from tests import factories

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def api_conversations(channel, receiver, count: int):
    channel.config = {"callback_url": receiver.url}
    channel.save()
    return [factories.ConversationFactory(channel=channel) for _ in range(count)]


def unsettled() -> int:
    return Message.objects.filter(
        direction="out", status__in=[Message.Status.PENDING, Message.Status.SENDING]
    ).count()


def worker_logs(worker) -> str:
    return "".join(p.read_text() for p in sorted(Path(worker.log_dir).glob("worker-*.log")))


def test_worker_killed_right_after_the_provider_received_the_reply(
    worker_factory, receiver, manager, channel
):
    (conversation,) = api_conversations(channel, receiver, 1)
    worker = worker_factory()
    killed = threading.Event()

    def kill_the_worker(n, record):
        if n == 1:
            worker.kill()
            killed.set()

    receiver.on_request = kill_the_worker
    worker.start()
    message = send_message(
        conversation=conversation,
        user=manager,
        client_id="c-1",
        content="Your refund is on its way",
    ).message
    wait_until(killed.is_set, 60, "the first request to reach the receiver")
    worker.start()  # the restarted worker gets the unacknowledged task back, and runs the sweep
    wait_until(lambda: unsettled() == 0, 60, "the message to settle")
    message.refresh_from_db()
    assert message.status == "unknown"
    assert "may or may not have arrived" in message.failure_reason
    # The killed worker's unfinished tasks come back (acks_late, after the broker's visibility
    # timeout): run again, they must find the message settled and send nothing.
    unfinished = _unfinished_deliveries(worker, 1)
    assert unfinished
    wait_until(
        lambda: all(f"deliver_message[{t}] succeeded" in worker_logs(worker) for t in unfinished),
        60,
        "the killed worker's tasks to run again",
    )
    assert receiver.counts() == {message.pk: 1}


def _unfinished_deliveries(worker, start: int) -> list[str]:
    log = (Path(worker.log_dir) / f"worker-{start}.log").read_text()
    received = re.findall(r"deliver_message\[([0-9a-f-]+)\] received", log)
    return [t for t in received if f"deliver_message[{t}] succeeded" not in log]


def test_200_replies_with_the_worker_killed_three_times(worker_factory, receiver, manager, channel):
    conversations = api_conversations(channel, receiver, 10)
    worker = worker_factory(concurrency=4)
    kill_at = {40, 100, 160}
    killers: list[int] = []  # the message whose arrival killed the worker
    lock = threading.Lock()

    def kill_and_restart(n, record):
        if n in kill_at:
            with lock:
                worker.kill()
                killers.append(record["message_id"])
                worker.start()

    receiver.on_request = kill_and_restart
    worker.start()
    sent_ids = []
    for n in range(200):
        conversation = conversations[n % len(conversations)]
        outcome = send_message(
            conversation=conversation, user=manager, client_id=f"burst-{n}", content=f"#{n}"
        )
        sent_ids.append(outcome.message.pk)
    wait_until(lambda: len(killers) == 3 and unsettled() == 0, 240, "all 200 replies to settle")
    time.sleep(0.5)  # a last in-flight request of a dying child would have arrived by now

    statuses = dict(Message.objects.filter(pk__in=sent_ids).values_list("pk", "status"))
    counts = receiver.counts()
    summary = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
    print(f"\n200 replies, worker killed 3 times: {summary}; received {len(receiver.records)}")
    assert set(statuses.values()) <= {"sent", "unknown", "failed"}
    assert max(counts.values()) == 1, "a reply reached the customer twice"
    for pk, status in statuses.items():
        if status == "sent":
            assert counts.get(pk) == 1, f"message {pk} is 'sent' but arrived {counts.get(pk, 0)}×"
        if status == "failed":
            assert pk not in counts
    # The replies whose arrival killed the worker were received and are visibly unknown.
    assert all(statuses[pk] == "unknown" for pk in killers)
    assert summary.get("unknown", 0) <= 3 * worker.concurrency
    # Each conversation's replies arrived in the order they were written, crashes or not.
    for conversation in conversations:
        arrived = [
            r["message_id"] for r in receiver.records if r["conversation_id"] == conversation.pk
        ]
        assert arrived == sorted(arrived)
