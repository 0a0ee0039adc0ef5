"""Real parts for the delivery tests: an HTTP receiver standing in for the API channel's
integrator (it records every request in arrival order and can kill the worker the moment a
request arrives), real `celery -A crm worker` processes on the test database, and a
redis-server of our own on a free port for broker outages.

Time bounds come from the environment the worker is started with (short lease, sweep and
visibility timeout), never from sleeps the assertions depend on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from crm.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"

# The worker's clock: short enough that a dead worker's claim settles within seconds.
WORKER_ENV = {
    "SEND_LEASE_SECONDS": "6",
    "SEND_STUCK_AFTER_SECONDS": "2",
    "SEND_SWEEP_SECONDS": "1",
    "CELERY_VISIBILITY_TIMEOUT": "8",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "PROVIDER_HTTP_TIMEOUT": "3",
    "SEND_RETRY_BASE_SECONDS": "0.2",
    "WEBHOOK_LEASE_SECONDS": "4",
    "WEBHOOK_SWEEP_SECONDS": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """A local HTTP server as the API channel's callback: records (message id, idempotency
    key) per request in arrival order; `on_request(n, record)` runs before it answers."""

    def __init__(self):
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.on_request: Callable[[int, dict], None] | None = None
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.status_for: Callable[[dict], int] | None = None  # or one decided per request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                record = {
                    "message_id": body["message"]["id"],
                    "conversation_id": body["message"]["conversation_id"],
                    "key": self.headers.get("Idempotency-Key"),
                    "at": time.monotonic(),
                }
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    if outer.status_for:
                        status = outer.status_for(record)
                    record["status"] = status
                    outer.records.append(record)
                    n = len(outer.records)
                if outer.on_request:
                    outer.on_request(n, record)
                payload = json.dumps({"id": f"remote-{record['message_id']}-{n}"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the worker that asked is dead

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for record in list(self.records):
            counts[record["message_id"]] = counts.get(record["message_id"], 0) + 1
        return counts

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def staff_client(client):
    from tests import factories

    admin = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class Worker:
    """`celery -A crm worker -B` (beat embedded, so the sweep runs on its schedule) in its own
    process group, on the test database and its own queue."""

    def __init__(self, queue: str, broker_url: str, log_dir: Path, concurrency: int = 4):
        self.queue = queue
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {
            **os.environ,
            **WORKER_ENV,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_QUEUE": self.queue,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        log = open(self.log_dir / f"worker-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [
                celery,
                "-A",
                "crm",
                "worker",
                "-B",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"reliability-{self.starts}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes every child too
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL the worker, its pool children and its beat: a machine losing power."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def broker_queue():
    """The test process publishes to a queue of its own, and not eagerly."""
    queue = f"reliability-{uuid.uuid4().hex[:8]}"
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager = False
    conf.task_default_queue = queue
    yield queue
    conf.task_always_eager, conf.task_default_queue = saved
    # Tasks a killed worker left behind in our queue go with it (best effort: a test that
    # stopped the broker has nothing to clean).
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(conf.broker_url.replace("redis+socket://", "unix://")).delete(queue)


@pytest.fixture
def worker_factory(transactional_db, broker_queue, tmp_path):
    """Start workers on the test database; every one is stopped before the tables are
    flushed."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("a worker process needs the PostgreSQL test database (DATABASE_URL)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="worker-", dir=ARTIFACTS))
    workers: list[Worker] = []

    def make(broker_url: str | None = None, concurrency: int = 4) -> Worker:
        worker = Worker(
            broker_queue, broker_url or celery_app.conf.broker_url, log_dir, concurrency
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll a condition on the database or a receiver; fail naming what never happened."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.2)


class RedisServer:
    """A redis-server of this test's own on a free port, to stop and start at will (never the
    shared one)."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "redis-server to accept connections")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def server_password_hashers(settings):
    """Passwords the live servers can check (the suite's fast MD5 hasher is not in their list)."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
