"""Poll email channels' IMAP folders into the inbox (see integrations/email/inbound.py)."""

import signal
import time

from django.core.management.base import BaseCommand, CommandError

from integrations.email.inbound import poll_and_record
from integrations.email.models import EmailAccount


class Command(BaseCommand):
    help = (
        "Fetch new mail by UID from every email channel (or one) into the inbox; runs until "
        "SIGTERM/SIGINT, or once with --once. Safe to run beside beat's poll or another copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, help="only this channel id")
        parser.add_argument("--once", action="store_true", help="poll once and exit")
        parser.add_argument(
            "--interval", type=float, default=60.0, help="seconds between polls (default 60)"
        )

    def handle(self, *args, **options):
        accounts = EmailAccount.objects.select_related("channel").filter(
            polling_enabled=True, channel__is_active=True
        )
        if options["channel"]:
            accounts = accounts.filter(channel_id=options["channel"])
            if not accounts.exists():
                raise CommandError(
                    f"channel {options['channel']} has no active email account with polling on"
                )
        stopping = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.append(True))
        while True:
            for account in accounts:
                result = poll_and_record(account)
                if result is None:
                    account.refresh_from_db(fields=["last_poll_error"])
                    self.stderr.write(f"channel {account.channel_id}: {account.last_poll_error}")
                else:
                    self.stdout.write(
                        f"channel {account.channel_id}: fetched {result.fetched}, "
                        f"stored {result.stored}"
                        + (" (UIDVALIDITY changed)" if result.uidvalidity_reset else "")
                    )
                if stopping:
                    break
            if options["once"] or stopping:
                return
            deadline = time.monotonic() + options["interval"]
            while time.monotonic() < deadline and not stopping:
                time.sleep(0.5)
