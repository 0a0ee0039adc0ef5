"""Long-running Matrix sync for every connected manager (see integrations/matrix/sync.py)."""

import asyncio
import signal

from django.core.management.base import BaseCommand

from integrations.matrix.sync import SyncService


class Command(BaseCommand):
    help = "Sync every manager's Matrix account into the inbox until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--timeout-ms", type=int, default=30000, help="long-poll timeout")
        parser.add_argument(
            "--refresh", type=float, default=5.0, help="seconds between looks for new connections"
        )

    def handle(self, *args, **options):
        service = SyncService(timeout_ms=options["timeout_ms"], refresh_seconds=options["refresh"])

        async def main():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, service.stop)
            self.stdout.write("matrix_sync: running (SIGTERM to stop)")
            await service.run()

        asyncio.run(main())
        self.stdout.write(f"matrix_sync: stopped cleanly after {service.batches} batches")
