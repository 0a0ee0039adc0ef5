"""Liveness heartbeats each Celery process writes itself, read by /health/.

The worker and beat are separate processes and fail separately: a heartbeat task scheduled by
beat and run by a worker tells neither apart (a worker without beat looked "down"). So:

- every worker writes `WORKER_KEY` from its own timer (a bootstep), whether or not any task
  arrives;
- beat writes `BEAT_KEY` from its scheduler's tick (crm/beat.py), so a beat whose loop is
  stuck goes stale.

Both are written to the cache (Redis in production, shared by every process).
"""

import logging

from celery import bootsteps
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

WORKER_KEY = "switchboard:heartbeat:worker"
BEAT_KEY = "switchboard:heartbeat:beat"
# Written this often; /health/ calls a heartbeat older than SWITCHBOARD["…_MAX_AGE"] stale.
INTERVAL_SECONDS = 10.0
KEY_TIMEOUT = 3600


def write(key: str, who: str = "") -> None:
    cache.set(key, {"at": timezone.now().isoformat(), "by": who}, timeout=KEY_TIMEOUT)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Added to the worker in crm/celery.py: writes at start, then every INTERVAL_SECONDS from
    the worker's own timer thread."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.entry = None

    def start(self, worker):
        self.beat(worker)
        self.entry = worker.timer.call_repeatedly(INTERVAL_SECONDS, self.beat, (worker,))

    def stop(self, worker):
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None

    def beat(self, worker) -> None:
        try:
            write(WORKER_KEY, worker.hostname)
        except Exception:  # a cache outage must not stop the worker; /health/ will say stale
            logger.exception("worker heartbeat not written")
