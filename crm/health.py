"""GET /health/: one status per dependency; 503 when a required one is down.

Other apps add checks with `register_check(name, function, required=…)`; a check returns a
dict with at least "status" ("ok", "down", "stale" or "not configured").
"""

import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm import heartbeats

_CHECKS: dict[str, tuple[Callable[[], dict], bool]] = {}


def register_check(name: str, check: Callable[[], dict], *, required: bool) -> None:
    _CHECKS[name] = (check, required)


def check_database() -> dict:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "vendor": connection.vendor, "ms": _ms(started)}


def check_cache() -> dict:
    started = time.monotonic()
    cache.set("switchboard:health", "1", timeout=10)
    if cache.get("switchboard:health") != "1":
        return {"status": "down", "detail": "cache did not return what was written"}
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {"status": "ok", "backend": backend, "ms": _ms(started)}


def check_channel_layer() -> dict:
    started = time.monotonic()
    layer = get_channel_layer()

    async def roundtrip():
        name = await layer.new_channel("health.")
        await layer.send(name, {"type": "health.ping"})
        return await layer.receive(name)

    message = async_to_sync(roundtrip)()
    if message.get("type") != "health.ping":
        return {"status": "down", "detail": "channel layer lost a message"}
    return {"status": "ok", "backend": type(layer).__name__, "ms": _ms(started)}


def check_worker() -> dict:
    """A Celery worker is alive: the heartbeat every worker writes from its own timer."""
    return _heartbeat_check(
        "worker", heartbeats.WORKER_KEY, "no worker heartbeat: is a celery worker running?"
    )


def check_beat() -> dict:
    """Celery beat is alive: the heartbeat beat's scheduler writes on its own tick. Without
    beat no periodic job runs (retries recovery, IMAP polls, stale-job recovery)."""
    return _heartbeat_check(
        "beat",
        heartbeats.BEAT_KEY,
        "no beat heartbeat: is celery beat running (with --scheduler crm.beat:HeartbeatScheduler)?",
    )


def _heartbeat_check(name: str, key: str, missing: str) -> dict:
    from crm.celery import app

    if app.conf.task_always_eager:
        return {"status": "ok", "mode": "eager (tasks run in the web process)"}
    beat = cache.get(key)
    if not beat:
        return {"status": "down", "detail": missing}
    age = (timezone.now() - parse_datetime(beat["at"])).total_seconds()
    max_age = settings.SWITCHBOARD["WORKER_HEARTBEAT_MAX_AGE"]
    result = {"status": "ok" if age <= max_age else "stale", "last_heartbeat_s": round(age, 1)}
    if beat.get("by") and name == "worker":
        result["by"] = beat["by"]
    if result["status"] == "stale":
        result["detail"] = f"the last {name} heartbeat is older than {max_age} s"
    return result


register_check("database", check_database, required=True)
register_check("cache", check_cache, required=True)
register_check("channel_layer", check_channel_layer, required=True)
register_check("worker", check_worker, required=True)
register_check("beat", check_beat, required=True)


def health(request):
    results = {}
    healthy = True
    for name, (check, required) in _CHECKS.items():
        try:
            result = check()
        except Exception as exc:  # a health check reports failures, it does not raise them
            result = {"status": "down", "detail": f"{exc.__class__.__name__}: {exc}"[:300]}
        result["required"] = required
        results[name] = result
        if required and result["status"] not in ("ok", "not configured"):
            healthy = False
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": results},
        status=200 if healthy else 503,
    )


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
