"""Realtime benchmark: commit → websocket receipt latency at every client, and server memory.

    DATABASE_URL=postgres://… REDIS_URL=redis://… \
        .venv/bin/python bench/realtime.py --clients 200 --rate 20 --seconds 20
    … bench/realtime.py --idle 2000 --seconds 30      # hold idle connections, then one message

Starts daphne (one process, the Redis channel layer, PostgreSQL) on a loopback port, connects
the clients with the `websockets` package using a logged-in session, ingests messages at a
steady rate through `ingest_message`, and prints JSON. The commit moment of each event is taken
where the event leaves after commit (communications.events.broadcast_events), the receipt moment when
each client parses it; both clocks are this machine's. Point DATABASE_URL at a scratch database:
the run adds a channel, a team, a user and its messages.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="ingested messages per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=int, default=0, help="idle mode: hold this many sockets")
    parser.add_argument("--conversations", type=int, default=50)
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmark runs on PostgreSQL and Redis")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by daphne

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cookie, channel = prepare()
    server = Server()
    try:
        result = asyncio.run(run(args, server, cookie, channel))
    finally:
        server.stop()
    print(json.dumps(result, indent=2))


def prepare():
    """A channel, a team and a manager with a session, all new for this run."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from communications.models import Channel
    from crm.models import Team

    tag = f"bench-{int(time.time())}"
    channel = Channel.objects.create(kind=Channel.Kind.API, name=tag)
    team = Team.objects.create(name=tag)
    channel.teams.add(team)
    user = get_user_model().objects.create_user(username=tag, password=tag)
    team.members.add(user)
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value, channel


class Server:
    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        daphne = Path(sys.executable).parent / "daphne"
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-daphne.log", "w")
        self.process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "crm.asgi:application"],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start; see {self.log.name}") from None
                time.sleep(0.2)

    def memory_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Client:
    def __init__(self):
        self.received: dict[int, float] = {}  # message id -> receipt time
        self.ready = asyncio.Event()
        self.closed_early = False

    async def run(self, url: str, cookie: str, stop: asyncio.Event):
        import websockets

        headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
        try:
            async with websockets.connect(
                url, additional_headers=headers, max_queue=None, ping_interval=None
            ) as ws:
                reader = asyncio.ensure_future(self.read(ws))
                await stop.wait()
                reader.cancel()
        except (OSError, websockets.WebSocketException):
            self.closed_early = True
            self.ready.set()

    async def read(self, ws):
        async for raw in ws:
            now = time.time()
            frame = json.loads(raw)
            for event in frame if isinstance(frame, list) else [frame]:  # batch=1: a list
                kind = event.get("type")
                if kind == "message.created":
                    self.received[event["data"]["id"]] = now
                elif kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "seq": event["seq"]}))
                elif kind == "ready":
                    self.ready.set()
        self.closed_early = True


def ingest_loop(channel, rate: float, seconds: float, conversations: int, commits, message_ids):
    """Steady inbound traffic through the one ingest path, in its own thread."""
    from django.db import connections

    from communications import events
    from communications.services.ingest import InboundMessage, InboundSender, ingest_message

    # The after-commit hook: the moment it is called is the commit moment.
    original = events.broadcast_events

    def timed(items) -> None:
        now = time.time()
        for _channel_id, event in items:
            if event["type"] == events.MESSAGE_CREATED:
                commits[event["data"]["id"]] = now
        original(items)

    events.broadcast_events = timed
    try:
        count = int(rate * seconds)
        start = time.monotonic()
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sender = f"bench-customer-{n % conversations}"
            result = ingest_message(
                channel,
                InboundMessage(
                    sender=InboundSender(external_id=sender, name=sender),
                    content=f"benchmark message {n}",
                ),
            )
            message_ids.append(result.message.pk)
    finally:
        events.broadcast_events = original
        connections.close_all()


async def run(args, server: Server, cookie: str, channel) -> dict:
    url = f"ws://127.0.0.1:{server.port}/ws/inbox/?batch=1"  # as the inbox page asks
    count = args.idle or args.clients
    baseline_kb = server.memory_kb()
    stop = asyncio.Event()
    clients = [Client() for _ in range(count)]
    tasks = []
    connect_start = time.monotonic()
    for index, client in enumerate(clients):
        tasks.append(asyncio.ensure_future(client.run(url, cookie, stop)))
        if index % 50 == 49:  # connect in waves so the handshakes don't time out
            await asyncio.wait_for(
                asyncio.gather(*(c.ready.wait() for c in clients[: index + 1])), 120
            )
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
    connect_seconds = time.monotonic() - connect_start
    connected_kb = server.memory_kb()

    if args.idle:
        await asyncio.sleep(args.seconds)
        rate, seconds = 1.0, 1.0  # one message after the idle spell: is everyone still there?
    else:
        rate, seconds = args.rate, args.seconds
    commits: dict[int, float] = {}
    message_ids: list[int] = []
    server_cpu_start = server.cpu_seconds()
    own_cpu_start = time.process_time()
    phase_start = time.monotonic()
    await asyncio.to_thread(
        ingest_loop, channel, rate, seconds, args.conversations, commits, message_ids
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(len(c.received) >= len(message_ids) for c in clients if not c.closed_early):
            break
        await asyncio.sleep(0.1)
    phase_seconds = time.monotonic() - phase_start
    server_cpu = server.cpu_seconds() - server_cpu_start
    own_cpu = time.process_time() - own_cpu_start
    peak_kb = server.memory_kb("VmHWM")
    final_kb = server.memory_kb()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    latencies = sorted(
        (client.received[mid] - commits[mid]) * 1000
        for client in clients
        for mid in message_ids
        if mid in client.received and mid in commits
    )
    expected = len(message_ids) * count
    return {
        "mode": "idle" if args.idle else "steady",
        "clients": count,
        "clients_dropped": sum(c.closed_early for c in clients),
        "idle_seconds": args.seconds if args.idle else 0,
        "messages": len(message_ids),
        "rate_per_second": rate,
        "deliveries_expected": expected,
        "deliveries_received": len(latencies),
        "latency_ms": {
            "p50": _pct(latencies, 50),
            "p95": _pct(latencies, 95),
            "p99": _pct(latencies, 99),
            "max": round(latencies[-1], 1) if latencies else None,
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        "connect_seconds": round(connect_seconds, 2),
        "server_rss_mb": {
            "before_clients": round(baseline_kb / 1024, 1),
            "connected": round(connected_kb / 1024, 1),
            "end": round(final_kb / 1024, 1),
            "peak": round(peak_kb / 1024, 1),
        },
        "server_rss_kb_per_connection": round((peak_kb - baseline_kb) / count, 1),
        "cpu_count": os.cpu_count(),
        # share of one core used while messages flowed: the server, and this load generator
        "server_cpu_share": round(server_cpu / phase_seconds, 2),
        "loadgen_cpu_share": round(own_cpu / phase_seconds, 2),
    }


def _pct(values: list[float], pct: float):
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return round(values[index], 1)


if __name__ == "__main__":
    main()
