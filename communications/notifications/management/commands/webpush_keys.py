"""`manage.py webpush_keys`: a new VAPID key pair for Web Push, as env lines."""

import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from communications.notifications import push


class Command(BaseCommand):
    help = (
        "Generate a VAPID key pair for Web Push and print VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY / "
        "VAPID_SUBJECT lines for the environment (or write them into an .env file with "
        "--write). New keys make every existing browser subscription invalid: browsers "
        "subscribe again the next time the inbox opens."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--subject",
            default=settings.VAPID_SUBJECT or f"mailto:{settings.DEFAULT_FROM_EMAIL}",
            help="who push services may contact: mailto:ops@example.com or an https URL",
        )
        parser.add_argument(
            "--write",
            metavar="ENV_FILE",
            help="set the three variables in this .env file (other lines are kept)",
        )

    def handle(self, *args, subject, write, **options):
        if not (subject.startswith("mailto:") or subject.startswith("https://")):
            raise CommandError("--subject must start with mailto: or https://")
        public, private = push.generate_keys()
        values = {
            "VAPID_PUBLIC_KEY": public,
            "VAPID_PRIVATE_KEY": private,
            "VAPID_SUBJECT": subject,
        }
        if write:
            path = Path(write)
            text = path.read_text() if path.exists() else ""
            for name, value in values.items():
                line = f"{name}={value}"
                pattern = re.compile(rf"^#?\s?{name}=.*$", re.MULTILINE)
                if pattern.search(text):
                    text = pattern.sub(line, text, count=1)
                else:
                    text = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
            path.write_text(text)
            self.stderr.write(f"Wrote {', '.join(values)} to {path}; restart web and worker.")
        else:
            for name, value in values.items():
                self.stdout.write(f"{name}={value}")
