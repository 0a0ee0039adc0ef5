"""Try email locally: in-process IMAP (pymap) and SMTP (aiosmtpd) servers and a channel on them.

Development only (pymap and aiosmtpd are in requirements-dev.txt). Until Ctrl-C it serves both
servers, polls the mailbox every few seconds into the inbox, and prints each mail Switchboard
sends. With CELERY_TASK_ALWAYS_EAGER (the embedded default) replies go out from the web process's
eager tasks; with a worker, from the worker.
"""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from communications.models import Channel
from crm.models import Team
from integrations.email.devservers import ImapServer, SmtpServer
from integrations.email.inbound import poll_and_record
from integrations.email.models import EmailAccount, Security

SAMPLE = (
    b"From: Dana Customer <dana@example.com>\r\nTo: Demo Support <support@demo.test>\r\n"
    b"Subject: My parcel has not arrived\r\nMessage-ID: <first-mail@example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello, my order 1042 is late. Dana\r\n"
)


class Command(BaseCommand):
    help = "Run local IMAP and SMTP servers with a demo email channel on them (development)."

    def add_arguments(self, parser):
        parser.add_argument("--imap-port", type=int, default=1143)
        parser.add_argument("--smtp-port", type=int, default=1025)
        parser.add_argument("--poll", type=float, default=5.0, help="seconds between polls")

    def handle(self, *args, **options):
        imap = ImapServer(port=options["imap_port"]).start()
        smtp = SmtpServer()
        smtp.port = options["smtp_port"]
        smtp.start()
        account = self._channel(imap, smtp)
        imap.append(SAMPLE)
        self.stdout.write(
            f"IMAP  {imap.host}:{imap.port}  user {imap.user} / {imap.password}  (pymap, in memory)\n"
            f"SMTP  {smtp.host}:{smtp.port}  (aiosmtpd; sent mail is printed here)\n"
            f"Channel #{account.channel_id} '{account.channel.name}' polls every "
            f"{options['poll']:.0f} s. A customer mail is waiting; reply from /inbox/.\n"
            "Write as a customer with any mail client against the IMAP server (APPEND), "
            "Ctrl-C to stop."
        )
        shown = 0
        try:
            while True:
                result = poll_and_record(account)
                if result and result.stored:
                    self.stdout.write(f"imported {result.stored} mail(s)")
                for mail in smtp.messages[shown:]:
                    self.stdout.write(
                        f"SENT {mail['Message-ID']} to {mail['To']}: {mail['Subject']}"
                    )
                shown = len(smtp.messages)
                time.sleep(options["poll"])
        except KeyboardInterrupt:
            pass
        finally:
            smtp.stop()
            imap.stop()

    @transaction.atomic
    def _channel(self, imap: ImapServer, smtp: SmtpServer) -> EmailAccount:
        channel, _ = Channel.objects.get_or_create(
            kind=Channel.Kind.EMAIL, name="Local mail (dev servers)"
        )
        channel.teams.add(*Team.objects.all())
        account, _ = EmailAccount.objects.update_or_create(
            channel=channel,
            defaults={
                "imap_host": imap.host,
                "imap_port": imap.port,
                "imap_security": Security.NONE,
                "imap_user": imap.user,
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "smtp_security": Security.NONE,
                "smtp_user": "",
                "from_address": "support@demo.test",
                "from_name": "Demo Support",
                "secrets": {"imap_password": imap.password},
            },
        )
        # A new server has a new UIDVALIDITY: the poll starts over and dedups by Message-ID.
        return account
