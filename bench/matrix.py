"""Matrix benchmark: WhatsApp-through-Matrix latency, inbound on both paths and outbound.

    DATABASE_URL=postgres://…/scratch REDIS_URL=redis://… .venv/bin/python bench/matrix.py \
        [--rate 20] [--seconds 30] [--outbound 200] [--outbound-rate 20]

Starts a real Synapse and the bridge emulator (tests/matrix_harness, via tests/matrix/stack),
Switchboard under daphne (PostgreSQL, the Redis channel layer), one connected manager with a
websocket to /ws/inbox/, then:

- appservice path: Synapse pushes to /matrix/appservice/, which stores each transaction in the
  webhook log; `manage.py drain_webhooks` processes it (no matrix_sync running); emulated
  ghosts post `--rate` messages/s for `--seconds`; latency = the manager's websocket receiving
  `message.created` minus the event's origin_server_ts (the homeserver accepting it). The time
  from the ghost's send call returning is reported too (`from_send_return_ms`; it can be
  negative: the push may overtake the HTTP answer);
- sync path: the appservice endpoint answers 503 (no hs_token), `manage.py matrix_sync` runs as
  its own process; same load in a new portal room, same measure;
- outbound: a real `celery -A crm worker` on the Redis broker; time from
  `POST /api/v1/conversations/<id>/messages/` to the event being in the portal room (the
  emulator's delivered list, i.e. the bridge received it from Synapse);
- ordered burst: `--burst` replies POSTed back to back into one conversation; replies of a
  conversation are handed over one at a time, in order, so this measures what ordering
  costs: manager POST → bridge receives, p50/p95, and whether the order held.

Prints one JSON document. Both clocks are this machine's. Point DATABASE_URL at a scratch
database: the run adds a user, a team, rooms and their messages.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

TARGETS_MS = {"appservice_p95": 300, "sync_p95": 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="inbound messages per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="per inbound path")
    parser.add_argument("--outbound", type=int, default=200, help="messages sent by the manager")
    parser.add_argument("--outbound-rate", type=float, default=20.0)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--burst", type=int, default=20, help="replies in the ordered burst")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmark runs on PostgreSQL and Redis")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"  # daphne hands sends to the worker

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.realtime import Server
    from tests.matrix.stack import start_stack

    server = Server()
    # Appservice transactions are stored in the webhook log and processed by the drainer.
    processes: list[Process] = [
        Process("drainer", [sys.executable, "manage.py", "drain_webhooks", "--poll", "1"])
    ]
    try:
        with start_stack(f"http://127.0.0.1:{server.port}/matrix/appservice") as stack:
            result = Bench(args, server, stack, processes).run()
    finally:
        for process in reversed(processes):
            process.stop()
        server.stop()
    print(json.dumps(result, indent=2))


class Process:
    """A Switchboard side process (the drainer, matrix_sync, the Celery worker), logged to /tmp."""

    def __init__(self, name: str, argv: list[str]):
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-matrix-{name}.log", "w")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


class Inbox:
    """The manager's websocket, in its own thread: content → receipt time of message.created."""

    def __init__(self, url: str, cookie: str):
        self.url, self.cookie = url, cookie
        self.received: dict[str, tuple[float, str]] = {}
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        if not self.ready.wait(20):
            raise RuntimeError("the inbox websocket did not become ready")

    async def _run(self) -> None:
        import websockets

        headers = {"Cookie": f"sessionid={self.cookie}", "Origin": "http://127.0.0.1"}
        async with websockets.connect(
            self.url, additional_headers=headers, max_queue=None, ping_interval=None
        ) as ws:
            while not self.stopping.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                frame = json.loads(raw)
                for event in frame if isinstance(frame, list) else [frame]:  # batch=1: a list
                    kind = event.get("type")
                    if kind == "message.created":
                        data = event["data"]
                        self.received.setdefault(data["content"], (now, data["created_at"]))
                    elif kind == "ping":
                        await ws.send(json.dumps({"type": "pong", "seq": event["seq"]}))
                    elif kind == "ready":
                        self.ready.set()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Bench:
    def __init__(self, args, server, stack, processes):
        self.args, self.server, self.stack, self.processes = args, server, stack, processes
        self.base = f"http://127.0.0.1:{server.port}"

    def run(self) -> dict:
        from integrations.matrix.models import MatrixConnection

        self.setup_manager()
        inbox = Inbox(f"ws://127.0.0.1:{self.server.port}/ws/inbox/?batch=1", self.cookie)
        try:
            appservice = self.inbound(inbox, "15552000001", "Bench Appservice", "as")

            # The sync path alone: the appservice endpoint refuses (503), matrix_sync runs.
            self.stack.configure(auth_mode="appservice", with_hs_token=False)
            started = time.time()
            self.processes.append(
                Process("sync", [sys.executable, "manage.py", "matrix_sync", "--refresh", "1"])
            )
            wait_until(
                lambda: (
                    (c := MatrixConnection.objects.get(pk=self.connection.pk)).last_synced_at
                    and c.last_synced_at.timestamp() > started
                ),
                60,
                "matrix_sync's first sync",
            )
            sync = self.inbound(inbox, "15552000002", "Bench Sync", "sy")
        finally:
            inbox.stop()
        outbound = self.outbound()
        ordered_burst = self.ordered_burst()
        return {
            "benchmark": "matrix",
            "rate_per_s": self.args.rate,
            "seconds_per_path": self.args.seconds,
            "synapse": "real Synapse (tests/matrix_harness), bridge emulator as mautrix-whatsapp",
            "switchboard": "daphne, PostgreSQL, Redis channel layer",
            "appservice_path": appservice,
            "sync_path": sync,
            "outbound": outbound,
            "ordered_burst": ordered_burst,
            "targets_ms": TARGETS_MS,
            "targets_met": {
                "appservice_p95": appservice["latency_ms"]["p95"] is not None
                and appservice["latency_ms"]["p95"] <= TARGETS_MS["appservice_p95"],
                "sync_p95": sync["latency_ms"]["p95"] is not None
                and sync["latency_ms"]["p95"] <= TARGETS_MS["sync_p95"],
            },
        }

    # -- setup ------------------------------------------------------------------------------
    def setup_manager(self) -> None:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client
        from rest_framework.authtoken.models import Token

        from crm.models import Team
        from integrations.matrix import connect
        from integrations.matrix.models import MatrixConnection

        self.stack.configure(auth_mode="appservice")
        self.stack.kick_appservice()
        tag = self.run_tag = f"bench-matrix-{int(time.time())}"
        user = get_user_model().objects.create_user(username=tag, password=tag)
        team = Team.objects.create(name=tag)
        team.members.add(user)  # the number's channel joins the owner's teams when connected
        connection = connect.start_login(user)
        wait_until(
            lambda: MatrixConnection.objects.get(pk=connection.pk).qr_data, 30, "the QR code"
        )
        self.stack.bridge.complete_login("15550000001", user_id=connection.matrix_user_id)
        wait_until(
            lambda: MatrixConnection.objects.get(pk=connection.pk).state == "connected",
            30,
            "connected",
        )
        self.user, self.connection = user, connection
        client = Client()
        client.force_login(user)
        self.cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        self.token = Token.objects.create(user=user).key

    def portal(self, ghost: str, name: str) -> str:
        from communications.models import Message
        from integrations.matrix.models import MatrixRoom

        room = self.stack.bridge.create_portal(self.connection.matrix_user_id, ghost, name=name)
        wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), 60, "portal joined")
        warm = self.stack.bridge.send_text(room, ghost, f"hello from {name}")
        wait_until(lambda: Message.objects.filter(external_id=warm).exists(), 60, "warm-up")
        return room

    # -- inbound ----------------------------------------------------------------------------
    def inbound(self, inbox: Inbox, ghost: str, name: str, tag: str) -> dict:
        room = self.portal(ghost, name)
        count = int(self.args.rate * self.args.seconds)
        returned: dict[str, float] = {}
        behind = 0.0
        start = time.monotonic()
        for i in range(count):
            due = start + i / self.args.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            content = f"{tag} #{i}"
            self.stack.bridge.send_text(room, ghost, content)
            returned[content] = time.time()
        sent_for = time.monotonic() - start
        try:
            wait_until(lambda: all(c in inbox.received for c in returned), 30, "all receipts")
        except RuntimeError:
            pass
        from_origin, from_return = [], []
        for content, accepted in returned.items():
            if content not in inbox.received:
                continue
            received, created_at = inbox.received[content]
            origin = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
            from_origin.append((received - origin) * 1000)
            from_return.append((received - accepted) * 1000)
        return {
            "messages": count,
            "received": len(from_origin),
            "achieved_rate_per_s": round(count / sent_for, 1),
            "sender_max_lag_ms": round(behind * 1000, 1),
            "latency_ms": summary(from_origin),
            "from_send_return_ms": summary(from_return),
        }

    # -- outbound ---------------------------------------------------------------------------
    def outbound(self) -> dict:
        import requests

        from communications.models import Conversation

        celery = str(Path(sys.executable).parent / "celery")
        self.processes.append(
            Process(
                "worker",
                [
                    celery,
                    "-A",
                    "crm",
                    "worker",
                    "-l",
                    "WARNING",
                    "-c",
                    str(self.args.worker_concurrency),
                    "--without-gossip",
                    "--without-mingle",
                ],
            )
        )
        room = self.stack.bridge.portal_for(self.connection.matrix_user_id, "15552000001").room_id
        conversation = Conversation.objects.get(external_id=room)
        url = f"{self.base}/api/v1/conversations/{conversation.pk}/messages/"
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"

        def delivered() -> dict[str, float]:
            return {
                d["content"].get("body"): d
                for d in self.stack.bridge.delivered_in(room)
                if d["content"].get("body")
            }

        seen: dict[str, float] = {}
        origin: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                now = time.time()
                for body, record in delivered().items():
                    if body not in seen:
                        seen[body] = now
                        origin[body] = (record.get("origin_server_ts") or 0) / 1000
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # Warm-up: the worker is up once a message goes through.
        posted = session.post(url, json={"client_id": f"{self.run_tag}-warm", "content": "warm-up"})
        posted.raise_for_status()
        wait_until(lambda: "warm-up" in seen, 90, "the worker's first delivery")
        started_at: dict[str, float] = {}
        post_ms = []
        start = time.monotonic()
        for i in range(self.args.outbound):
            due = start + i / self.args.outbound_rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            content = f"out #{i}"
            started_at[content] = time.time()
            response = session.post(
                url, json={"client_id": f"{self.run_tag}-{i}", "content": content}
            )
            response.raise_for_status()
            post_ms.append((time.time() - started_at[content]) * 1000)
        try:
            wait_until(lambda: all(c in seen for c in started_at), 60, "all deliveries")
        except RuntimeError:
            pass
        stop.set()
        watcher.join(5)
        latencies = [(seen[c] - t) * 1000 for c, t in started_at.items() if c in seen]
        # split: POST → the homeserver accepting the event (API, Celery, provider) …
        to_homeserver = [(origin[c] - t) * 1000 for c, t in started_at.items() if origin.get(c)]
        # … and the homeserver → the bridge (Synapse's appservice push, the emulator's queue)
        to_bridge = [(seen[c] - origin[c]) * 1000 for c in started_at if origin.get(c)]
        bodies = [d["content"].get("body") for d in self.stack.bridge.delivered_in(room)]
        return {
            "messages": self.args.outbound,
            "delivered": len(latencies),
            "doubled": len(bodies) - len(set(bodies)),
            "rate_per_s": self.args.outbound_rate,
            "worker": f"celery -A crm worker -c {self.args.worker_concurrency} (Redis broker)",
            "latency_ms": summary(latencies),
            "post_to_homeserver_ms": summary(to_homeserver),
            "homeserver_to_bridge_ms": summary(to_bridge),
            "post_answer_ms": summary(post_ms),
        }

    # -- ordered burst ------------------------------------------------------------------
    def ordered_burst(self) -> dict:
        """`--burst` replies POSTed back to back into one conversation (the worker is running)."""
        import requests

        from communications.models import Conversation

        room = self.portal("15552000003", "Bench Burst")
        conversation = Conversation.objects.get(external_id=room)
        url = f"{self.base}/api/v1/conversations/{conversation.pk}/messages/"
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                now = time.time()
                for d in self.stack.bridge.delivered_in(room):
                    seen.setdefault(d["content"].get("body"), now)
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started_at: dict[str, float] = {}
        for i in range(self.args.burst):
            content = f"burst #{i}"
            started_at[content] = time.time()
            session.post(
                url, json={"client_id": f"{self.run_tag}-burst-{i}", "content": content}
            ).raise_for_status()
        try:
            wait_until(lambda: all(c in seen for c in started_at), 120, "the whole burst")
        except RuntimeError:
            pass
        stop.set()
        watcher.join(5)
        bodies = [d["content"].get("body") for d in self.stack.bridge.delivered_in(room)]
        return {
            "messages": self.args.burst,
            "delivered": sum(c in seen for c in started_at),
            "in_order": bodies == list(started_at),
            "doubled": len(bodies) - len(set(bodies)),
            "latency_ms": summary(
                [(seen[c] - t) * 1000 for c, t in started_at.items() if c in seen]
            ),
        }


def summary(values: list[float]) -> dict:
    values = sorted(values)

    def pct(p: float):
        if not values:
            return None
        return round(values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))], 1)

    return {
        "n": len(values),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(values[-1], 1) if values else None,
    }


if __name__ == "__main__":
    main()
