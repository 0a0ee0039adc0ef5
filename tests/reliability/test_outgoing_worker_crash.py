"""A real `celery worker` SIGKILLed while it posts an outgoing webhook to a slow receiver: the
event is not lost — a fresh worker takes the delivery again once the dead one's lease runs
out — and the receiver gets it again with the same event id (at least once; it deduplicates)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from communications.models import OutgoingWebhookDelivery, OutgoingWebhookSubscription
from communications.services import outgoing_webhooks
from tests import factories
from tests.outgoing.conftest import SECRET, customer_writes

from .conftest import WORKER_ENV, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class SlowReceiver:
    """Answers the first request only after the test says so (the worker dies meanwhile)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "raw": raw})
                if len(outer.requests) == 1:
                    outer.first_arrived.set()
                    outer.release.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_worker_killed_mid_delivery_then_the_event_is_delivered(
    worker_factory, broker_queue, monkeypatch
):
    from crm.celery import app as celery_app

    monkeypatch.setitem(
        celery_app.conf,
        "task_routes",
        {"communications.tasks.send_outgoing_webhooks": {"queue": f"{broker_queue}.outgoing"}},
    )
    monkeypatch.setitem(WORKER_ENV, "OUTGOING_WEBHOOK_LEASE_SECONDS", "15")
    monkeypatch.setitem(WORKER_ENV, "OUTGOING_WEBHOOK_TIMEOUT", "5")
    monkeypatch.setitem(WORKER_ENV, "OUTGOING_WEBHOOK_SWEEP_SECONDS", "1")
    receiver = SlowReceiver()
    try:
        OutgoingWebhookSubscription.objects.create(
            url=receiver.url, events=["message.created"], secrets={"signing_secret": SECRET}
        )
        channel = factories.ChannelFactory()
        worker = worker_factory(concurrency=1)
        worker.start()
        customer_writes(channel, "Is my parcel on its way?")
        outgoing_webhooks.kick()
        wait_until(receiver.first_arrived.is_set, 60, "the worker to post the event")
        worker.kill()
        receiver.release.set()
        delivery = OutgoingWebhookDelivery.objects.get()
        assert delivery.state == "sending" and delivery.attempts == 1

        worker.start()  # its beat sweeps the outbox once the dead claim's lease ends
        wait_until(
            lambda: OutgoingWebhookDelivery.objects.filter(state="delivered").exists(),
            90,
            "the delivery",
        )
        delivery.refresh_from_db()
        assert delivery.attempts == 2
        assert len(receiver.requests) == 2
        ids = {r["headers"]["X-Switchboard-Event-Id"] for r in receiver.requests}
        assert ids == {str(delivery.event_id)}
        for request in receiver.requests:
            headers = request["headers"]
            assert outgoing_webhooks.verify(
                SECRET,
                headers["X-Switchboard-Timestamp"],
                request["raw"],
                headers["X-Switchboard-Signature"],
            )
        assert json.loads(receiver.requests[1]["raw"])["data"]["content"] == (
            "Is my parcel on its way?"
        )
    finally:
        receiver.close()
