"""Run a webhook drainer (communications/drainer.py) until SIGTERM/SIGINT.

Woken by PostgreSQL NOTIFY at every committed delivery; processes it at once with the leased
SKIP LOCKED claim, so any number of drainers and the Celery drain can run side by side.
"""

import signal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from communications.drainer import Drainer
from crm.gc_tuning import tune as tune_garbage_collector


class Command(BaseCommand):
    help = "Process webhook deliveries as soon as they are committed (LISTEN/NOTIFY + poll)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            help="seconds between looks without a notification (WEBHOOK_DRAINER_POLL_SECONDS)",
        )
        parser.add_argument(
            "--heartbeat-file",
            default="",
            help="touched at every loop (at least once per poll): for a container healthcheck",
        )

    def handle(self, *args, poll: float | None, heartbeat_file: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("drain_webhooks needs PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED)")
        drainer = Drainer(poll_seconds=poll, heartbeat_file=heartbeat_file)
        tune_garbage_collector()

        def stop(signum, frame):
            drainer.stop.set()  # the batch in hand is finished, then the loop ends

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        processed = drainer.run()
        self.stdout.write(f"drained {processed} webhook deliveries")
