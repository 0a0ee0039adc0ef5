"""A real `manage.py drain_webhooks` SIGKILLed while it processes a delivery (in the middle of
downloading the customer's photo): the next drainer takes the batch again once the dead one's
lease runs out — by its poll, no notification and no Celery involved — and the message is
stored once, with its photo."""

import os
import signal
import subprocess
import sys
import threading

import pytest
from django.test import Client

from communications import webhooks
from communications.models import Attachment, Channel, Message, WebhookDelivery
from integrations.whatsapp_cloud.webhook import signature_for
from tests.whatsapp_cloud.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    FakeGraphApi,
    fixture_bytes,
)

from .conftest import ARTIFACTS, ROOT, WORKER_ENV, _database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MEDIA_ID = "1003383421387256"


class DrainerProcess:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        env = {
            **os.environ,
            **WORKER_ENV,  # WEBHOOK_LEASE_SECONDS=4
            "DATABASE_URL": _database_url(),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "2",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        log = open(self.log_dir / f"drainer-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "drain_webhooks", "--poll", "0.3"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        """SIGTERM: the drainer finishes its batch and exits 0."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            return self.process.wait(timeout=15)
        return self.process.returncode


@pytest.fixture
def drainers(transactional_db, tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("the drainer needs the PostgreSQL test database (DATABASE_URL)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    made = []

    def make():
        drainer = DrainerProcess(tmp_path)
        made.append(drainer)
        return drainer

    yield make
    for drainer in made:
        drainer.kill()


@pytest.fixture
def graph():
    server = FakeGraphApi()
    yield server
    server.close()


def test_drainer_killed_mid_delivery_then_the_next_one_processes_it_once(
    drainers, graph, monkeypatch
):
    monkeypatch.setattr(webhooks, "kick", lambda: True)  # no Celery drain at all
    channel = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Cloud",
        config={"phone_number_id": PHONE_NUMBER_ID, "graph_api_base": f"{graph.base}/v21.0"},
        secrets={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET},
    )
    graph.media[MEDIA_ID] = (b"\xff\xd8\xff photo bytes", "image/jpeg")
    first = drainers()
    killed = threading.Event()

    def kill_on_first_media_lookup(record):
        if record["path"].endswith(MEDIA_ID) and not killed.is_set():
            first.kill()
            killed.set()

    graph.on_request = kill_on_first_media_lookup
    first.start()
    wait_until(lambda: _listening(), 60, "the drainer to LISTEN")
    body = fixture_bytes("image_message.json")
    response = Client().post(
        f"/webhooks/whatsapp/{channel.pk}/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature_for(APP_SECRET, body)},
    )
    assert response.status_code == 200, response.content
    wait_until(killed.is_set, 60, "the drainer to start downloading the photo")
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "processing" and Message.objects.count() == 0

    second = drainers()
    second.start()  # no notification will come: its poll finds the expired lease
    wait_until(lambda: WebhookDelivery.objects.filter(outcome="done").exists(), 60, "re-take")
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    message = Message.objects.get()
    assert message.content == "New Tennis Shoes"
    attachment = Attachment.objects.get(message=message)
    assert attachment.download_state == "stored"
    assert second.stop() == 0  # SIGTERM ends it cleanly


def _listening() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = %s AND datname = current_database()",
            [f"LISTEN {webhooks.NOTIFY_CHANNEL}"],
        )
        return cursor.fetchone()[0] > 0
