"""Demo data: a manager and an admin, teams, channels of every kind, customers with orders and
conversations with realistic messages. Safe to run again: it adds nothing the second time."""

import random
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from communications.models import Channel, Conversation, ManagerAvailability, Message
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
        _seed_meta(channels, now)
        _seed_assignment(by_kind, team, users)
        Token.objects.get_or_create(user=manager)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {stories} conversations on {len(channels)} channels. "
                f"Logins: manager / {DEMO_PASSWORD}, admin / {DEMO_PASSWORD}."
            )
        )


def _seed_assignment(by_kind: dict[str, Channel], team: Team, users: dict) -> None:
    """The website chat hands new conversations out in turn (try `simulate_inbound --channel
    api`), within a cap of 8 open conversations each (Alex: 5); the Telegram bot keeps office
    hours in Berlin and answers outside them once per closed period. Both managers are online
    until their pages have been closed for a while (beat then sets them offline; opening the
    inbox brings them back)."""
    team.max_open_per_manager = 8
    team.save(update_fields=["max_open_per_manager"])
    chat = by_kind[Channel.Kind.API]
    chat.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    chat.assignment_team = team
    chat.save(update_fields=["auto_assignment", "assignment_team"])
    bot = by_kind[Channel.Kind.TELEGRAM]
    bot.business_hours = {
        "time_zone": "Europe/Berlin",
        "week": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": [["10:00", "14:00"]]},
        "holidays": ["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"],
        "away_reply": "Thanks for your message! We're out of the office right now and will "
        "answer as soon as we're back (Mon–Fri 9:00–18:00, Sat 10:00–14:00, Berlin time).",
    }
    bot.save(update_fields=["business_hours"])
    for name, cap in (("manager", None), ("alex", 5)):
        ManagerAvailability.objects.update_or_create(
            user=users[name],
            defaults={
                "status": ManagerAvailability.Status.ONLINE,
                "max_open_conversations": cap,
            },
        )


def _seed_meta(channels: list[Channel], now) -> None:
    """Messenger and Instagram set up as staff would (page / account id, tokens), so their
    conversations inside the 24-hour window can be answered from the inbox and the older ones
    show the closed window. The tokens are placeholders: paste real ones in admin → Channels
    to reach Meta (docs/meta.md)."""
    for channel in channels:
        if channel.kind not in (Channel.Kind.MESSENGER, Channel.Kind.INSTAGRAM):
            continue
        key = "page_id" if channel.kind == Channel.Kind.MESSENGER else "instagram_account_id"
        channel.config = {key: "108456123456789" if key == "page_id" else "17841400000000001"}
        channel.secrets = {
            "page_access_token": "demo-page-access-token",
            "app_secret": secrets.token_urlsafe(24),
            "verify_token": secrets.token_urlsafe(12),
        }
        channel.save()
        if channel.kind != Channel.Kind.INSTAGRAM:
            continue
        conversation = (
            Conversation.objects.filter(channel=channel).order_by("-last_message_at").first()
        )
        if conversation is None:
            continue
        at = now - timedelta(minutes=20)
        Message.objects.create(
            conversation=conversation,
            channel=channel,
            direction=Message.Direction.INBOUND,
            content="Love these colours! Is the linen shirt back in stock?\n\n"
            "[Replied to your story: https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1]",
            status=Message.Status.RECEIVED,
            external_id=f"demo-ig-story-{conversation.pk}",
            sender_contact=conversation.contact,
            metadata={"meta_type": "message", "story_reply": {"id": "1", "url": ""}},
            created_at=at,
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=at,
            last_inbound_at=at,
            last_message_preview="Love these colours! Is the linen shirt back in stock?",
            unread_count=conversation.unread_count + 1,
        )
