"""Demo data: a manager and an admin, teams, channels of every kind, customers with orders and
conversations with realistic messages. Safe to run again: it adds nothing the second time."""

import random
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from communications.models import Channel, Conversation
from crm.demo_stories import load_stories
from crm.models import Team

DEMO_PASSWORD = "switchboard"
# Known on purpose, so the README can show a customer writing in live with one curl command.
DEMO_INBOUND_TOKEN = "demo-inbound-token"

CHANNELS = [
    (Channel.Kind.WHATSAPP, "WhatsApp · Sales"),
    (Channel.Kind.TELEGRAM, "Telegram bot"),
    (Channel.Kind.MESSENGER, "Facebook page"),
    (Channel.Kind.INSTAGRAM, "Instagram"),
    (Channel.Kind.EMAIL, "support@example.com"),
    (Channel.Kind.API, "Website chat (API)"),
]


class Command(BaseCommand):
    help = "Load demo users, channels, customers, orders and conversations (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        if Conversation.objects.exists():
            self.stdout.write("Demo data already present; nothing added.")
            return
        rng = random.Random(42)
        admin, _ = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        admin.set_password(DEMO_PASSWORD)
        admin.save()
        manager, _ = User.objects.get_or_create(
            username="manager", defaults={"first_name": "Maria", "is_staff": False}
        )
        manager.set_password(DEMO_PASSWORD)
        manager.save()
        colleague, _ = User.objects.get_or_create(username="alex", defaults={"first_name": "Alex"})
        colleague.set_password(DEMO_PASSWORD)
        colleague.save()
        team, _ = Team.objects.get_or_create(name="Support")
        team.members.add(manager, colleague)
        channels = []
        for kind, name in CHANNELS:
            token = DEMO_INBOUND_TOKEN if kind == Channel.Kind.API else secrets.token_urlsafe(24)
            channel = Channel.objects.create(kind=kind, name=name, secrets={"inbound_token": token})
            channel.teams.add(team)
            channels.append(channel)
        now = timezone.now()
        users = {"manager": manager, "alex": colleague}
        by_kind = {channel.kind: channel for channel in channels}
        stories = load_stories(by_kind, users, team, rng, now)
        Token.objects.get_or_create(user=manager)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {stories} conversations on {len(channels)} channels. "
                f"Logins: manager / {DEMO_PASSWORD}, admin / {DEMO_PASSWORD}."
            )
        )
