"""Ops: point a Telegram bot at this Switchboard.

    manage.py telegram_set_webhook --channel 3 --public-url https://crm.example.com

Generates a new webhook secret (kept encrypted in the channel's secrets) and calls setWebhook
with it, the channel's URL (`<public-url>/webhooks/telegram/<id>/`) and the update kinds we read.
"""

from django.core.management.base import BaseCommand, CommandError

from communications.models import Channel
from communications.providers import DeliveryError
from integrations.telegram.setup import set_webhook


class Command(BaseCommand):
    help = "Register a Telegram channel's webhook with Telegram (setWebhook, with a new secret)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, required=True, help="the channel's id")
        parser.add_argument(
            "--public-url",
            required=True,
            help="where Telegram reaches this Switchboard over HTTPS, e.g. https://crm.example.com",
        )

    def handle(self, *args, channel: int, public_url: str, **options):
        found = Channel.objects.filter(pk=channel, kind=Channel.Kind.TELEGRAM).first()
        if found is None:
            raise CommandError(f"no Telegram channel with id {channel}")
        try:
            done = set_webhook(found, public_url)
        except DeliveryError as exc:
            raise CommandError(exc.reason) from exc
        self.stdout.write(self.style.SUCCESS(done))
