"""Celery beat's scheduler: django-celery-beat's, plus beat's own heartbeat (crm/heartbeats.py).

Run beat with `--scheduler crm.beat:HeartbeatScheduler` (settings and compose do)."""

import logging
import time

from django_celery_beat.schedulers import DatabaseScheduler

from .heartbeats import BEAT_KEY, INTERVAL_SECONDS, write

logger = logging.getLogger(__name__)


class HeartbeatScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, writing beat's heartbeat from its own loop."""

    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last_heartbeat >= INTERVAL_SECONDS:
            self._last_heartbeat = now
            try:
                write(BEAT_KEY, "beat")
            except Exception:
                logger.exception("beat heartbeat not written")
        return super().tick(*args, **kwargs)
