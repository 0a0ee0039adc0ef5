"""The drainer (communications/drainer.py, `manage.py drain_webhooks`): woken by PostgreSQL
NOTIFY from the door's own INSERT, it processes deliveries without any Celery task; several
drainers share the log without processing a delivery twice; a batch costs a fixed number of
statements whatever its size."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from communications import tasks, webhooks
from communications.drainer import Drainer
from communications.models import Channel, Message, WebhookDelivery
from tests import factories
from tests.webhooks.test_fast_door import door, post_wa  # noqa: F401 - fixture
from tests.webhooks.test_webhook_log import text_delivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not connection.vendor == "postgresql", reason="LISTEN/NOTIFY and SKIP LOCKED"
    ),
]


class DrainerThread:
    """A real drainer on its own thread (its own Django connection and LISTEN connection)."""

    def __init__(self, poll_seconds: float):
        self.drainer = Drainer(poll_seconds=poll_seconds)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None

    def _run(self):
        try:
            self.drainer.run()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            connections.close_all()

    def start(self) -> "DrainerThread":
        self.thread.start()
        assert self.drainer.listening.wait(10), "the drainer never started listening"
        return self

    def stop(self):
        self.drainer.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive() and self.error is None, self.error


@pytest.fixture
def no_celery(monkeypatch):
    """Any drain task queued (or run eagerly) is recorded and does nothing."""
    queued = []
    monkeypatch.setattr(tasks.process_webhook_deliveries, "delay", lambda: queued.append(1))
    monkeypatch.setattr(tasks.process_webhook_deliveries, "apply_async", lambda *a, **k: None)
    return queued


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {seconds}s waiting for {what}"
        time.sleep(0.05)


async def test_the_drainer_processes_what_the_fast_door_commits_without_celery(
    door,  # noqa: F811
    wa_channel,
    no_celery,
):
    # A poll far longer than the wait below: only the door's NOTIFY can wake it in time.
    drainer = await sync_to_async(DrainerThread(poll_seconds=60).start)()
    try:
        started = time.monotonic()
        response = await post_wa(door, wa_channel, text_delivery("wamid.N1"))
        assert response.status_code == 200
        for _ in range(200):
            if await sync_to_async(Message.objects.filter(external_id="wamid.N1").exists)():
                break
            await asyncio.sleep(0.05)
        assert await sync_to_async(Message.objects.filter(external_id="wamid.N1").exists)()
        assert time.monotonic() - started < 10
        # The message commits a moment before the drainer counts it: wait for the count too.
        for _ in range(100):
            if drainer.drainer.processed:
                break
            await asyncio.sleep(0.02)
        assert drainer.drainer.wakeups >= 1 and drainer.drainer.processed == 1
        [(outcome, attempts)] = await sync_to_async(
            lambda: list(WebhookDelivery.objects.values_list("outcome", "attempts"))
        )()
        assert (outcome, attempts) == ("done", 1)
        assert no_celery == []  # no task was queued: the kick was the fixture's no-op
    finally:
        await sync_to_async(drainer.stop)()


def test_a_django_door_delivery_and_a_replay_wake_the_drainer(client, wa_channel, no_celery):
    from tests.whatsapp_cloud.conftest import post_signed

    drainer = DrainerThread(poll_seconds=60).start()
    try:
        # With eager Celery patched out, only NOTIFY can process it.
        response = post_signed(client, wa_channel, text_delivery("wamid.N2"))
        assert response.status_code == 200
        wait_for(lambda: Message.objects.filter(external_id="wamid.N2").exists(), 10, "ingest")
        delivery = WebhookDelivery.objects.get()
        Message.objects.all().delete()
        assert webhooks.replay([delivery.pk]) == 1  # autocommit: notified at once
        wait_for(lambda: Message.objects.filter(external_id="wamid.N2").exists(), 10, "replay")
        delivery.refresh_from_db()
        assert delivery.outcome == "done" and delivery.attempts == 2
    finally:
        drainer.stop()


def test_while_a_drainer_beats_no_celery_drain_is_queued_and_once_it_is_gone_one_is(
    client, wa_channel, no_celery, monkeypatch
):
    from django.core.cache import cache

    from tests.whatsapp_cloud.conftest import post_signed

    monkeypatch.setattr(webhooks, "DRAINER_ALIVE_SECONDS", 1)
    drainer = DrainerThread(poll_seconds=60).start()
    try:
        wait_for(lambda: cache.get(webhooks.DRAINER_KEY) is not None, 5, "the heartbeat")
        cache.delete(webhooks.KICK_KEY)
        assert post_signed(client, wa_channel, text_delivery("wamid.B1")).status_code == 200
        wait_for(lambda: Message.objects.filter(external_id="wamid.B1").exists(), 10, "ingest")
        assert no_celery == []  # the drainer took it; the Celery drain was not asked
    finally:
        drainer.stop()
    # The drainer is gone: its key runs out, and so does this process's memory of it.
    time.sleep(1.2)
    assert not webhooks.drainer_running()
    assert post_signed(client, wa_channel, text_delivery("wamid.B2")).status_code == 200
    assert no_celery == [1]  # the Celery drain is kicked again


def test_without_a_notification_the_poll_takes_an_expired_lease_again(wa_channel, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(webhooks, "kick", lambda: True)
    webhooks.log_accepted(wa_channel, "whatsapp", {}, text_delivery("wamid.L"))
    # A drainer claimed it and died before processing: the row stays "processing" until its
    # lease ends, and no notification will come for it.
    assert len(webhooks.claim_batch()) == 1
    drainer = DrainerThread(poll_seconds=0.2).start()
    try:
        time.sleep(0.5)
        assert not Message.objects.exists()  # the lease still runs: nobody else takes it
        WebhookDelivery.objects.update(lease_until=timezone.now())
        wait_for(lambda: Message.objects.filter(external_id="wamid.L").exists(), 10, "re-take")
        assert WebhookDelivery.objects.get().attempts == 2
    finally:
        drainer.stop()


def test_a_lost_listen_connection_is_opened_again(wa_channel, no_celery, monkeypatch):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    drainer = DrainerThread(poll_seconds=60).start()
    try:
        first = drainer.drainer.listener
        with connection.cursor() as cursor:  # the database drops the drainer's LISTEN session
            cursor.execute("SELECT pg_terminate_backend(%s)", [first.info.backend_pid])
        wait_for(lambda: drainer.drainer.listener not in (None, first), 15, "a new LISTEN")
        webhooks.log_accepted(wa_channel, "whatsapp", {}, text_delivery("wamid.R1"))
        wait_for(lambda: Message.objects.filter(external_id="wamid.R1").exists(), 10, "ingest")
    finally:
        drainer.stop()


class CountingReceiver(webhooks.WebhookReceiver):
    source = "counting"
    channel_kinds = (Channel.Kind.API,)

    def __init__(self):
        self.lock = threading.Lock()
        self.processed: list[int] = []

    def process(self, channel, deliveries):
        time.sleep(0.002)  # long enough for the other drainer to claim meanwhile
        with self.lock:
            self.processed.extend(d.pk for d in deliveries)


@pytest.fixture
def counting():
    receiver = CountingReceiver()
    webhooks.register_receiver(receiver)
    yield receiver
    webhooks._receivers.pop("counting")


def test_two_drainers_never_process_one_delivery_twice(counting, settings, monkeypatch):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    settings.WEBHOOK_BATCH_SIZE = 7  # many claims, so the two race on every one
    channel = factories.ChannelFactory(kind=Channel.Kind.API)
    drainers = [DrainerThread(poll_seconds=0.2).start() for _ in range(2)]
    try:
        ids = [
            webhooks.log_accepted(channel, "counting", {}, b"ok", dedup_key=f"k{n}")[0]
            for n in range(300)
        ]
        wait_for(lambda: len(counting.processed) >= len(ids), 30, "every delivery")
        time.sleep(0.3)  # a double processing would show up here
    finally:
        for drainer in drainers:
            drainer.stop()
    assert sorted(counting.processed) == sorted(ids)  # each exactly once
    assert all(d.drainer.processed > 0 for d in drainers), "one drainer did everything"
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {"done"}
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.parametrize("size", [2, 40])
def test_a_batch_costs_the_same_statements_whatever_its_size(
    wa_channel, monkeypatch, django_assert_num_queries, size
):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    for n in range(size):
        webhooks.log_accepted(wa_channel, "whatsapp", {}, text_delivery(f"wamid.S{n}"))
    from django.core.cache import cache

    cache.clear()  # the eager after-commit tasks (profile refresh) read cached flags
    drainer = Drainer(poll_seconds=1)
    # The claim that returns its rows (one UPDATE … RETURNING), the channel, ingest's fixed
    # batch (BEGIN … COMMIT: 10), the profile refresh task run eagerly here (3; a worker's in
    # production), ONE UPDATE of the verdicts, and the claim that finds the log empty.
    with django_assert_num_queries(STATEMENTS_PER_BATCH):
        assert drainer.drain_until_empty() == size
    assert Message.objects.count() == size


STATEMENTS_PER_BATCH = 18  # was 23 before the claim returned its rows
