"""/health/ names the worker and beat separately, each from a heartbeat that process writes
itself: a real `celery worker` without beat is "ok" while beat is "down" (issue 10, item 6)."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from crm import heartbeats
from crm.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="the processes share heartbeats through Redis"
    ),
]


@pytest.fixture
def not_eager():
    celery_app.conf.task_always_eager = False
    cache.delete_many([heartbeats.WORKER_KEY, heartbeats.BEAT_KEY])
    yield
    celery_app.conf.task_always_eager = True
    cache.delete_many([heartbeats.WORKER_KEY, heartbeats.BEAT_KEY])


def _start(args: list[str], **env_overrides) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", **env_overrides}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err.decode(errors="replace")[-3000:]


def _wait_for(client, predicate, process, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/health/").json()
        if predicate(body["checks"]):
            return body
        assert process.poll() is None, f"{what}: the process exited\n{_stop(process)}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {body}")


def test_a_worker_without_beat_is_up_and_beat_is_named_down(client, not_eager):
    body = client.get("/health/").json()
    assert body["checks"]["worker"]["status"] == "down"
    assert "worker" in body["checks"]["worker"]["detail"]

    # A private queue: this worker must not take tasks meant for anyone else.
    worker = _start(
        [
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
            "-Q",
            f"health-test-{secrets.token_hex(4)}",
            "-n",
            "health-test@%h",
        ]
    )
    try:
        body = _wait_for(
            client, lambda checks: checks["worker"]["status"] == "ok", worker, "the worker"
        )
    finally:
        log = _stop(worker)
    checks = body["checks"]
    assert checks["worker"]["by"].startswith("health-test@"), log
    assert checks["beat"]["status"] == "down"
    assert "celery beat" in checks["beat"]["detail"]
    assert "detail" not in checks["worker"]  # the worker's state does not hinge on beat
    assert body["status"] == "unhealthy"  # beat is required: no periodic job runs without it


def test_beat_writes_its_own_heartbeat(client, not_eager):
    """A real `celery beat` (no worker): beat is ok, the worker is still reported down."""
    test_db = connection.settings_dict["NAME"]
    database_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{test_db}"
    beat = _start(
        ["beat", "--loglevel=WARNING", "--max-interval=1", "-s", "/dev/null"],
        DATABASE_URL=database_url,
        # Beat's due jobs go nowhere: nobody else's worker should run them.
        CELERY_BROKER_URL="memory://",
    )
    try:
        body = _wait_for(client, lambda checks: checks["beat"]["status"] == "ok", beat, "beat")
    finally:
        _stop(beat)
    assert body["checks"]["worker"]["status"] == "down"
    assert settings.CELERY_BEAT_SCHEDULER == "crm.beat:HeartbeatScheduler"
