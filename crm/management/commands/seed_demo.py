"""Demo data: a manager and an admin, teams, channels of every kind, customers with orders and
conversations with realistic messages. Safe to run again: it adds nothing the second time."""

import random
import secrets
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from communications.models import Channel, ContactIdentity, Conversation, Message
from crm.models import Contact, Order, Team

DEMO_PASSWORD = "switchboard"
# Known on purpose, so the README can show a customer writing in live with one curl command.
DEMO_INBOUND_TOKEN = "demo-inbound-token"

CUSTOMERS = [
    ("Olena Kovalenko", "+380671234567"),
    ("Marek Nowak", "+48601234567"),
    ("Sophie Martin", "+33612345678"),
    ("Lukas Schneider", "+4915112345678"),
    ("Aisha Rahman", "+447700900123"),
    ("Diego Fernández", "+34612345678"),
    ("Chiara Rossi", "+393471234567"),
    ("Noah Jansen", "+31612345678"),
    ("Emma Johansson", "+46701234567"),
    ("Yusuf Demir", "+905321234567"),
    ("Hana Novák", "+420601234567"),
    ("Liam O'Brien", "+353851234567"),
]

THREADS = [
    [
        ("in", "Hi! My order still says 'processing' — when will it ship?"),
        ("out", "Hello! Let me check that for you."),
        ("out", "It leaves our warehouse today; you'll get the tracking link by email."),
        ("in", "Great, thank you 🙏"),
    ],
    [
        ("in", "Can I change the delivery address for my last order?"),
        ("out", "Sure — what's the new address?"),
        ("in", "Hauptstraße 12, 10115 Berlin"),
    ],
    [
        ("in", "The package arrived but one item is missing."),
        ("out", "Sorry about that! Could you send a photo of the packing slip?"),
        ("in", "Here it is."),
        ("in", "It's the blue mug that's missing."),
    ],
    [("in", "Do you ship to Norway?"), ("out", "Yes, 3–5 working days.")],
    [("in", "I'd like to return the jacket, it's too small.")],
    [
        ("in", "Is the discount code still valid?"),
        ("out", "Yes, until Sunday."),
        ("in", "Perfect, ordering now!"),
    ],
]

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
        for index, (name, phone) in enumerate(CUSTOMERS):
            contact = Contact.objects.create(name=name, phone=phone)
            for n in range(rng.randint(1, 3)):
                Order.objects.create(
                    contact=contact,
                    number=f"SB-{1000 + index * 10 + n}",
                    title=rng.choice(["Linen shirt", "Ceramic mug set", "Rain jacket", "Sneakers"]),
                    status=rng.choice(list(Order.Status.values)),
                    amount=Decimal(rng.randint(1500, 25000)) / 100,
                    ordered_at=now - timedelta(days=rng.randint(1, 60)),
                )
            channel = channels[index % len(channels)]
            external_id = (
                phone.lstrip("+")
                if channel.kind != Channel.Kind.EMAIL
                else (f"{name.split()[0].lower()}@example.com")
            )
            ContactIdentity.objects.create(
                channel=channel, contact=contact, external_id=external_id, display_name=name
            )
            started = now - timedelta(hours=index * 3 + 1)
            conversation = Conversation.objects.create(
                channel=channel,
                contact=contact,
                external_id=external_id,
                assignee=manager if index % 3 == 0 else None,
                team=team,
                last_message_at=started,
            )
            thread = THREADS[index % len(THREADS)]
            unread = 0
            for position, (direction, text) in enumerate(thread):
                created = started + timedelta(minutes=position * 4)
                inbound = direction == "in"
                Message.objects.create(
                    conversation=conversation,
                    channel=channel,
                    direction=direction,
                    content=text,
                    status=Message.Status.RECEIVED if inbound else Message.Status.READ,
                    external_id=f"demo-{conversation.pk}-{position}",
                    sender_contact=contact if inbound else None,
                    sender_user=None if inbound else manager,
                    created_at=created,
                )
                unread = unread + 1 if inbound else 0
            conversation.last_message_at = created
            conversation.last_inbound_at = created
            conversation.last_message_preview = text[:200]
            conversation.unread_count = unread
            conversation.save()
        Token.objects.get_or_create(user=manager)
        seed_notification_settings(manager, colleague)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {len(CUSTOMERS)} conversations on {len(channels)} channels. "
                f"Logins: manager / {DEMO_PASSWORD}, admin / {DEMO_PASSWORD}."
            )
        )


def seed_notification_settings(manager, colleague) -> None:
    """The demo manager hears about their own conversations and mentions, with the chime; their
    colleague about every conversation of the team, silently."""
    from communications.notifications.models import NotificationPreference

    Level = NotificationPreference.Level
    NotificationPreference.objects.update_or_create(
        user=manager, defaults={"level": Level.MINE, "sound": True}
    )
    NotificationPreference.objects.update_or_create(
        user=colleague, defaults={"level": Level.ALL, "sound": False}
    )
