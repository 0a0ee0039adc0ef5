"""Outgoing webhooks benchmark: events/s delivered to a local receiver through a real worker.

    DATABASE_URL=postgres://…/scratch REDIS_URL=redis://…/N .venv/bin/python bench/outgoing_webhooks.py
        [--events 2000] [--per-conversation 2] [--concurrency 2]

A receiver (ThreadingHTTPServer, answers 200) runs in a child process and counts requests.
One subscription to `message.created` points at it. Customers' messages go through the one
ingest path in batches of 100 (the outbox rows are written with their events); a `celery
worker` subprocess on the outgoing queue claims, signs and posts them. Measured: from the
first batch's commit to the receiver counting every event (events/s), plus duplicates seen.
Anchor: the receiver's own rate — the same bodies posted with a plain `requests.Session`,
one at a time over one connection, from this process.
Target (issue 15): ≥ 200 events/s on this 2-core machine.
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on the path: the project root must.
sys.path[0] = str(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


def _receiver(port_value, count, ids_seen_twice, ready):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real endpoint
        disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            event_id = self.headers.get("X-Switchboard-Event-Id")
            with count.get_lock():
                count.value += 1
                if event_id:
                    if event_id in seen:
                        ids_seen_twice.value += 1
                    seen.add(event_id)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_value.value = server.server_address[1]
    ready.set()
    server.serve_forever(poll_interval=0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    queue = f"bench-outgoing-{uuid.uuid4().hex[:6]}"
    os.environ["CELERY_QUEUE"] = queue  # before settings: the outgoing queue is <queue>.outgoing
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    import django

    django.setup()
    import logging

    import requests
    from django.core.management import call_command

    from communications.models import Channel, OutgoingWebhookDelivery, OutgoingWebhookSubscription
    from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
    from crm.celery import app as celery_app

    logging.disable(logging.WARNING)
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL: a real worker sends the webhooks")
    call_command("migrate", verbosity=0)
    celery_app.conf.task_always_eager = False

    port, count = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
    twice = multiprocessing.Value("i", 0)
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=_receiver, args=(port, count, twice, ready), daemon=True
    )
    receiver.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port.value}/hook"
    worker = None
    try:
        # Anchor: the receiver's own ceiling, one plain client, one connection.
        body = json.dumps({"id": 1, "type": "message.created", "data": {"x": "y" * 400}}).encode()
        session = requests.Session()
        started = time.perf_counter()
        for _ in range(args.events):
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        anchor = args.events / (time.perf_counter() - started)
        session.close()
        with count.get_lock():
            count.value = 0

        OutgoingWebhookSubscription.objects.filter(name__startswith="bench-outgoing").update(
            is_active=False
        )
        subscription = OutgoingWebhookSubscription.objects.create(
            name=queue, url=url, events=["message.created"], secrets={"signing_secret": "bench"}
        )
        channel = Channel.objects.create(kind=Channel.Kind.API, name=queue)
        env = {**os.environ, "CELERY_QUEUE": queue, "CELERY_TASK_ALWAYS_EAGER": "false"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", f"{queue}.outgoing",
             "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(5)  # the worker connects to the broker
        conversations = max(args.events // args.per_conversation, 1)
        items = [
            InboundMessage(
                sender=InboundSender(external_id=f"{queue}-c{i % conversations}"),
                content=f"Message {i}: where is my order?",
                external_id=f"{queue}-{i}",
            )
            for i in range(args.events)
        ]
        started = time.perf_counter()
        for start in range(0, len(items), 100):
            ingest_messages(channel, items[start : start + 100])
        stored_s = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while count.value < args.events and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        settle_deadline = time.monotonic() + 30  # the last batch's UPDATE follows its posts
        while time.monotonic() < settle_deadline:
            delivered = OutgoingWebhookDelivery.objects.filter(
                subscription=subscription, state="delivered"
            ).count()
            if delivered >= args.events:
                break
            time.sleep(0.1)
        result = {
            "events": args.events,
            "conversations": conversations,
            "worker_concurrency": args.concurrency,
            "batch_size": int(os.environ.get("OUTGOING_WEBHOOK_BATCH_SIZE", "100")),
            "stored_seconds": round(stored_s, 2),
            "received": count.value,
            "received_twice": twice.value,
            "marked_delivered": delivered,
            "events_per_s": round(count.value / seconds, 1),
            "anchor_plain_client_one_connection_per_s": round(anchor, 1),
            "ratio_to_anchor": round(count.value / seconds / anchor, 3),
            "target_events_per_s": 200,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=2))
        subscription.is_active = False
        subscription.save(update_fields=["is_active"])
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        receiver.terminate()


if __name__ == "__main__":
    main()
