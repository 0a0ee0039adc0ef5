"""A real `celery worker` SIGKILLed while it processes a webhook delivery (in the middle of
downloading the customer's photo): the delivery is not lost — another worker takes it again
once the dead one's lease runs out — and the message is stored once, with its photo."""

import threading

import pytest
from django.test import Client

from communications.models import Attachment, Channel, Message, WebhookDelivery
from crm.celery import app as celery_app
from integrations.whatsapp_cloud.webhook import signature_for
from tests.whatsapp_cloud.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    FakeGraphApi,
    fixture_bytes,
)

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MEDIA_ID = "1003383421387256"


@pytest.fixture
def graph():
    server = FakeGraphApi()
    yield server
    server.close()


def test_worker_killed_mid_delivery_then_the_delivery_is_processed_once(
    worker_factory, broker_queue, graph, monkeypatch
):
    # The test process publishes the drain task where this test's worker listens.
    monkeypatch.setitem(
        celery_app.conf,
        "task_routes",
        {"communications.tasks.process_webhook_deliveries": {"queue": f"{broker_queue}-webhooks"}},
    )
    channel = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Cloud",
        config={"phone_number_id": PHONE_NUMBER_ID, "graph_api_base": f"{graph.base}/v21.0"},
        secrets={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET},
    )
    graph.media[MEDIA_ID] = (b"\xff\xd8\xff photo bytes", "image/jpeg")
    worker = worker_factory(concurrency=1)
    killed = threading.Event()

    def kill_on_first_media_lookup(record):
        if record["path"].endswith(MEDIA_ID) and not killed.is_set():
            worker.kill()
            killed.set()

    graph.on_request = kill_on_first_media_lookup
    worker.start()
    body = fixture_bytes("image_message.json")
    response = Client().post(
        f"/webhooks/whatsapp/{channel.pk}/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature_for(APP_SECRET, body)},
    )
    assert response.status_code == 200, response.content
    wait_until(killed.is_set, 60, "the worker to start downloading the photo")
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "processing" and Message.objects.count() == 0

    worker.start()  # a fresh worker: its beat sweeps the log once the dead claim's lease ends
    wait_until(lambda: WebhookDelivery.objects.filter(outcome="done").exists(), 60, "the delivery")
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    message = Message.objects.get()
    assert message.content == "New Tennis Shoes"
    attachment = Attachment.objects.get(message=message)
    assert attachment.download_state == "stored"
    with attachment.file.open("rb") as stored:
        assert stored.read() == b"\xff\xd8\xff photo bytes"
