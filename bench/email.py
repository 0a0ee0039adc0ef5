"""Email benchmark: import mails from the in-process IMAP server into an empty channel.

    DATABASE_URL=postgres://…/scratch .venv/bin/python bench/email.py [--mails 10000]

Starts pymap (dict backend) in this process, APPENDs `--mails` customer mails (a third of
them replies threading onto earlier ones), then times `poll_account` — fetch by UID, parse,
thread, ingest — and prints one JSON document: mails/s and the process's peak RSS before and
after the import (the IMAP server's own copy of the mailbox is in the "before" figure).
Target: ≥ 200 mails/s on 2 cores, memory flat (batches of 100, nothing kept between them).
Not measured yet: the 1,000-reply send burst through a worker (not built).
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the stdlib's `email`: its folder must not shadow the package.
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
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from communications.models import Channel, Message
    from integrations.email.devservers import ImapServer
    from integrations.email.inbound import poll_account
    from integrations.email.models import EmailAccount, Security

    with ImapServer() as imap:
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
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        result = poll_account(account)
        seconds = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rate = result.stored / seconds if seconds else 0
    print(
        json.dumps(
            {
                "mails": args.mails,
                "stored": result.stored,
                "stored_in_db": Message.objects.filter(channel=channel).count(),
                "conversations": channel.conversations.count(),
                "append_seconds": round(append_s, 1),
                "import_seconds": round(seconds, 1),
                "import_mails_per_s": round(rate, 1),
                "peak_rss_mb_before_import": round(rss_before / 1024, 1),
                "peak_rss_mb_after_import": round(rss_after / 1024, 1),
                "target_met": rate >= 200,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
