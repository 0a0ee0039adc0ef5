"""Email benchmark: import mails from the in-process IMAP server into an empty channel.

    DATABASE_URL=postgres://…/scratch .venv/bin/python bench/mail.py [--mails 10000]

Starts pymap (dict backend) in a child process, APPENDs `--mails` customer mails (a third of
them replies threading onto earlier ones), then times `poll_account` — fetch by UID, parse,
thread, ingest — and prints one JSON document: mails/s, and this process's resident memory
after the first batch and after the last one (the IMAP server's copy of the mailbox lives in
the child, so the figures are Switchboard's alone) beside its peak.
Target: ≥ 200 mails/s on 2 cores, memory flat (batches of 100, nothing kept between them).
Anchor: parsing the same mails alone, in this process (the ceiling of the import).

Then the send burst (with REDIS_URL set, so a real worker can run): `--replies` replies
(5 per conversation, over the imported conversations) stored through the one send path and
delivered by a `celery worker` subprocess to an aiosmtpd server in this process; mails/s from
the first send to the last mail received. Anchor: the same number of mails sent straight
with smtplib over one connection (the ceiling of the SMTP server here).
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on the path: the project root must instead.
sys.path[0] = str(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


def _mail(i: int) -> bytes:
    reply = i % 3 == 2
    headers = [
        f"From: Customer {i % 500} <c{i % 500}@example.com>",
        "To: support@bench.test",
        f"Subject: {'Re: ' if reply else ''}Order {i - 2 if reply else i}",
        f"Message-ID: <bench-{i}@example.com>",
        "Date: Fri, 04 Dec 2026 10:00:00 +0000",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if reply:
        headers.append(f"In-Reply-To: <bench-{i - 2}@example.com>")
    body = f"Hello, this is mail {i}. Where is my order? " * 5
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--replies", type=int, default=1_000)
    args = parser.parse_args()

    import logging

    import django

    django.setup()
    from django.conf import settings

    # As in production: DEBUG would keep the last 9,000 SQL statements (bulk JSON documents
    # among them) and the memory figure would measure that log, not the import.
    settings.DEBUG = False
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command lines
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from communications.models import Channel, Message
    from integrations.email.inbound import poll_account
    from integrations.email.models import EmailAccount, Security

    with _imap_in_child() as imap:
        conn = imap.client()
        started = time.perf_counter()
        for i in range(args.mails):
            conn.append("INBOX", None, None, _mail(i))
        conn.logout()
        append_s = time.perf_counter() - started
        channel = Channel.objects.create(kind=Channel.Kind.EMAIL, name=f"bench {time.time()}")
        account = EmailAccount.objects.create(
            channel=channel,
            imap_host=imap.host,
            imap_port=imap.port,
            imap_security=Security.NONE,
            imap_user=imap.user,
            smtp_host="127.0.0.1",
            from_address="support@bench.test",
            secrets={"imap_password": imap.password},
        )
        rss_before = _rss_mb()
        rss_by_batch = []
        started = time.perf_counter()
        result = poll_account(account, on_batch=lambda _r: rss_by_batch.append(_rss_mb()))
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        from integrations.email.parse import parse_mail

        started = time.perf_counter()
        for i in range(args.mails):
            parse_mail(_mail(i))
        parse_rate = args.mails / (time.perf_counter() - started)
    rate = result.stored / seconds if seconds else 0
    burst = _send_burst(account, args.replies) if os.environ.get("REDIS_URL") else None
    print(
        json.dumps(
            {
                "anchor_parse_only_mails_per_s": round(parse_rate, 1),
                "mails": args.mails,
                "stored": result.stored,
                "stored_in_db": Message.objects.filter(channel=channel).count(),
                "conversations": channel.conversations.count(),
                "append_seconds": round(append_s, 1),
                "import_seconds": round(seconds, 1),
                "import_mails_per_s": round(rate, 1),
                "rss_mb_before_import": rss_before,
                "rss_mb_after_first_batch": rss_by_batch[0] if rss_by_batch else None,
                "rss_mb_after_last_batch": rss_by_batch[-1] if rss_by_batch else None,
                "rss_mb_peak": round(peak, 1),
                "target_met": rate >= 200,
                "send_burst": burst or "skipped: set REDIS_URL (a real worker sends)",
            },
            indent=2,
        )
    )


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class _imap_in_child:
    """pymap in its own process: its in-memory mailbox must not count as our memory."""

    def __enter__(self):
        import subprocess
        from types import SimpleNamespace

        from integrations.email.devservers import ImapServer, free_port

        port = free_port()
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from integrations.email.devservers import ImapServer; "
            f"ImapServer(port={port}).start(); print('ready', flush=True); sys.stdin.read()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline().strip() == "ready"

        server = ImapServer(port=port)  # not started: its client() and credentials only
        return SimpleNamespace(
            host=server.host, port=port, user=server.user, password=server.password,
            client=server.client,
        )  # fmt: skip

    def __exit__(self, *exc):
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait(10)


def _send_burst(account, replies: int) -> dict:
    """Replies through the send path and a real worker to a local SMTP server."""
    import smtplib
    import subprocess
    import uuid
    from email.message import EmailMessage

    from django.db import transaction

    from communications.models import Message
    from communications.services.send import send_message
    from crm.celery import app as celery_app
    from crm.models import Team
    from integrations.email.devservers import SmtpServer
    from integrations.email.models import Security
    from tests.factories import UserFactory

    queue = f"bench-email-{uuid.uuid4().hex[:6]}"
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    user = UserFactory(username=f"bench-{uuid.uuid4().hex[:6]}")
    team = Team.objects.create(name=f"bench {queue}")
    team.members.add(user)
    account.channel.teams.add(team)
    conversations = list(account.channel.conversations.order_by("id")[: max(replies // 5, 1)])
    with SmtpServer() as smtp:
        # Anchor: the SMTP server's own ceiling over one connection.
        started = time.perf_counter()
        with smtplib.SMTP(smtp.host, smtp.port) as conn:
            for i in range(replies):
                mail = EmailMessage()
                mail["From"], mail["To"], mail["Subject"] = "a@b.test", "c@d.test", f"anchor {i}"
                mail.set_content("anchor")
                conn.send_message(mail)
        anchor_rate = replies / (time.perf_counter() - started)
        smtp.messages.clear()
        type(account).objects.filter(pk=account.pk).update(
            smtp_host=smtp.host, smtp_port=smtp.port, smtp_security=Security.NONE, smtp_user=""
        )
        env = {**os.environ, "CELERY_QUEUE": queue, "CELERY_TASK_ALWAYS_EAGER": "false"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", queue,
             "--concurrency", "4", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(4)  # the worker connects to the broker
            started = time.perf_counter()
            for i in range(replies):
                with transaction.atomic():
                    send_message(
                        conversation=conversations[i % len(conversations)],
                        user=user,
                        client_id=f"{queue}-{i}",
                        content=f"Reply {i}: your parcel is on its way.",
                    )
            stored_s = time.perf_counter() - started
            deadline = time.monotonic() + 600
            while len(smtp.messages) < replies and time.monotonic() < deadline:
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        received = len(smtp.messages)
    sent = Message.objects.filter(client_id__startswith=queue, status="sent").count()
    return {
        "replies": replies,
        "conversations": len(conversations),
        "worker_concurrency": 4,
        "stored_seconds": round(stored_s, 1),
        "received_by_smtp": received,
        "marked_sent": sent,
        "mails_per_s": round(received / seconds, 1),
        "anchor_smtplib_one_connection_mails_per_s": round(anchor_rate, 1),
    }


if __name__ == "__main__":
    main()
