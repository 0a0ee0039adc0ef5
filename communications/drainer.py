"""The drainer: a process that empties the webhook log as soon as deliveries are committed.

`manage.py drain_webhooks` runs `Drainer.run()`. It LISTENs on a PostgreSQL connection of its
own (webhooks.NOTIFY_CHANNEL); every INSERT of an accepted delivery — the fast door's group
commit, the Django view, a replay — signals that channel in its own transaction, so the
drainer wakes at the COMMIT, claims a batch with the same leased SKIP LOCKED claim as the
Celery drain (webhooks.claim_deliveries) and processes it at once, then claims again until the log
is empty. While it works, arrivals gather; the next claim takes all of them (up to
WEBHOOK_BATCH_SIZE), so batches grow with the load and a quiet system answers a lone message
in one round trip.

Without a notification it still looks every WEBHOOK_DRAINER_POLL_SECONDS: that takes again a
killed drainer's (or worker's) batch once its lease has run out, deliveries whose retry
backoff has passed, and anything stored while the LISTEN connection was being re-opened.

Several drainers, the Celery drain (kicks, the beat's sweep) and `process_one` (broker down)
coexist: a claim skips rows another holds, and a claimed row is settled only by its holder.
"""

import contextlib
import logging
import os
import select
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection

from . import webhooks

logger = logging.getLogger(__name__)


def _conninfo() -> str:
    from .webhook_door import _conninfo

    return _conninfo()


class Drainer:
    def __init__(
        self,
        poll_seconds: float | None = None,
        stop: threading.Event | None = None,
        heartbeat_file: str = "",
    ):
        self.poll_seconds = (
            settings.WEBHOOK_DRAINER_POLL_SECONDS if poll_seconds is None else poll_seconds
        )
        self.stop = stop or threading.Event()
        self.heartbeat_file = heartbeat_file  # touched every loop: the container healthcheck
        self.listener = None
        self.next_beat = 0.0
        self.processed = 0  # deliveries processed successfully (tests and logs read these)
        self.batches = 0
        self.wakeups = 0  # notifications that woke it (not the poll)
        self.listening = threading.Event()  # set once LISTEN is in place (tests wait on it)

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        logger.info("webhook drainer started (poll every %ss)", self.poll_seconds)
        try:
            while not self.stop.is_set():
                try:
                    self._listen()
                    self.listening.set()
                    self.drain_until_empty()
                    self._beat()
                    self._wait()
                except Exception:  # the database restarted, a network blip: start afresh
                    logger.exception("webhook drainer: retrying after an error")
                    self._close_listener()
                    close_old_connections()
                    connection.close()
                    self.stop.wait(min(self.poll_seconds, 5.0))
        finally:
            self._close_listener()
            connection.close()
        logger.info("webhook drainer stopped after %s deliveries", self.processed)
        return self.processed

    def drain_until_empty(self) -> int:
        """Claim and process batches until none is waiting; returns deliveries processed."""
        done = 0
        while not self.stop.is_set():
            claimed = webhooks.claim_deliveries()
            if not claimed:
                break
            self.batches += 1
            self._beat()  # a long backlog must not look like a dead drainer
            processed = webhooks.process_deliveries(claimed)
            self.processed += processed
            done += processed
        return done

    def _beat(self) -> None:
        """At most once a second: the container healthcheck's file, and the key that tells the
        web processes a drainer runs (so they stop kicking the Celery drain)."""
        now = time.monotonic()
        if now < self.next_beat:
            return
        self.next_beat = now + 1.0
        webhooks.drainer_beat()
        if self.heartbeat_file:
            with open(self.heartbeat_file, "a"):
                os.utime(self.heartbeat_file)

    # --- LISTEN -----------------------------------------------------------------------------

    def _listen(self) -> None:
        if self.listener is not None and not self.listener.closed:
            return
        import psycopg

        self.listener = psycopg.connect(_conninfo(), autocommit=True)
        self.listener.execute(f"LISTEN {webhooks.NOTIFY_CHANNEL}")
        # Listening from here on: what was committed before is found by the claim that follows.

    def _wait(self) -> None:
        """Until a notification arrives, the poll interval passes or we are asked to stop.
        Notifications that queued up while we worked are all taken: one claim serves them."""
        conn = self.listener
        deadline = time.monotonic() + self.poll_seconds
        while not self.stop.is_set():
            if self._take_notifications(conn):
                self.wakeups += 1
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Short slices, so a stop request is seen within a quarter of a second.
            ready, _, _ = select.select([conn.fileno()], [], [], min(left, 0.25))
            if ready and self._take_notifications(conn):
                self.wakeups += 1
                return

    @staticmethod
    def _take_notifications(conn) -> bool:
        """Read what the server sent without blocking; True if any notification came."""
        got = False
        for _ in conn.notifies(timeout=0):
            got = True
        return got

    def _close_listener(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close
                self.listener.close()
            self.listener = None
