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

from communications.models import (
    Channel,
    ContactIdentity,
    Conversation,
    ManagerAvailability,
    Message,
)
from communications.saved_views.demo import seed_saved_views
from communications.services.contacts import seed_demo_contact_attributes
from communications.services.merge_demo import seed_merge_demo
from crm.demo_stories import load_stories
from crm.models import Contact, Team
from reports.demo import seed_report_history

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


# A placeholder in the shape of @BotFather's tokens: the demo's Telegram conversations can be
# answered (the reply box is open); Telegram refuses it until a real token is set in the admin.
DEMO_TELEGRAM_BOT_TOKEN = "123456789:demo-token-paste-your-bots-token-in-the-admin"


def _telegram_demo(channels: list[Channel]) -> None:
    """The Telegram bot channel gets a bot token, so its conversations can be answered, and
    each customer a numeric chat id as Telegram names private chats (the story's handle stays
    the username)."""
    channel = next(c for c in channels if c.kind == Channel.Kind.TELEGRAM)
    channel.secrets = {**channel.secrets, "bot_token": DEMO_TELEGRAM_BOT_TOKEN}
    channel.save(update_fields=["secrets"])
    identities = ContactIdentity.objects.filter(channel=channel).select_related("contact")
    for n, identity in enumerate(identities.order_by("id")):
        chat_id = str(582910370 + n)
        handle = identity.external_id
        Conversation.objects.filter(channel=channel, external_id=handle).update(external_id=chat_id)
        identity.external_id = chat_id
        identity.username = identity.username or handle
        identity.save(update_fields=["external_id", "username"])
        if not identity.contact.username:
            Contact.objects.filter(pk=identity.contact_id).update(username=identity.username)


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
        _telegram_demo(channels)
        seed_team_workflow(manager=manager, colleague=colleague, team=team)
        seed_saved_views(manager=manager, colleague=colleague, team=team)
        seed_demo_contact_attributes(manager=manager)
        _seed_assignment(by_kind, team, users)
        _seed_audit(admin, manager, channels, team)
        Token.objects.get_or_create(user=manager)
        _seed_avatars()
        _whatsapp_cloud_demo(channels[0], now)
        seed_notification_settings(manager, colleague)
        _outgoing_webhook_demo(now)
        seed_merge_demo(by_kind, manager=manager)
        seed_report_history(now)  # reports: earlier exchanges and the rollups over them
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {stories} conversations on {len(channels)} channels. "
                f"Logins: manager / {DEMO_PASSWORD}, admin / {DEMO_PASSWORD}."
            )
        )


def _seed_audit(admin, manager, channels: list[Channel], team: Team) -> None:
    """The audit log (admin → Activity) beyond the conversations' own lines: what the admin
    did while setting up (a channel and its secret, the team, a contact's notes), a mistyped
    and a good sign-in. The same `record_audit` rows the admin saves and sign-ins write."""
    from communications.models import Activity
    from communications.services.activity import record_audit

    subject = Activity.Subject
    chat = channels[0]
    record_audit(
        Activity.Verb.CREATED,
        subject_type=subject.CHANNEL,
        subject_id=chat.pk,
        subject_repr=str(chat),
        before={},
        after={"name": chat.name, "secrets_changed": ["inbound_token"]},
        actor=admin,
    )
    members = [{"id": user.pk, "name": user.username} for user in team.members.order_by("pk")]
    record_audit(
        Activity.Verb.CHANGED,
        subject_type=subject.TEAM,
        subject_id=team.pk,
        subject_repr=str(team),
        before={"members": []},
        after={"members": members},
        actor=admin,
    )
    contact = Contact.objects.order_by("pk").first()
    if contact is not None:
        record_audit(
            Activity.Verb.CHANGED,
            subject_type=subject.CONTACT,
            subject_id=contact.pk,
            subject_repr=str(contact),
            before={"notes": ""},
            after={"notes": contact.notes or "Prefers WhatsApp over email."},
            actor=admin,
        )
    address = "203.0.113.7"  # a documentation address
    record_audit(
        Activity.Verb.LOGIN_FAILED,
        subject_type=subject.USER,
        subject_id=None,
        subject_repr="mnager",
        before={},
        after={"username": "mnager", "address": address},
    )
    record_audit(
        Activity.Verb.LOGIN,
        subject_type=subject.USER,
        subject_id=manager.pk,
        subject_repr=manager.username,
        before={},
        after={"address": address},
        actor=manager,
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


# Customers whose platform gave a picture (R12): stored as the background refresh stores one.
AVATAR_COLOURS = {
    "Marek Nowak": ((40, 110, 200), (250, 200, 60)),
    "Sophie Martin": ((200, 60, 90), (255, 230, 210)),
    "Lukas Schneider": ((30, 150, 110), (230, 250, 240)),
    "Noah Jansen": ((120, 70, 190), (250, 180, 90)),
}


def _seed_avatars() -> None:
    import io

    from PIL import Image, ImageDraw

    from communications.providers import Profile
    from communications.services.profiles import store_profile

    identities = ContactIdentity.objects.filter(contact__name__in=list(AVATAR_COLOURS))
    for identity in identities.select_related("contact"):
        background, face = AVATAR_COLOURS[identity.contact.name]
        image = Image.new("RGB", (160, 160), background)
        draw = ImageDraw.Draw(image)
        draw.ellipse((50, 28, 110, 88), fill=face)  # a head
        draw.ellipse((22, 96, 138, 200), fill=face)  # shoulders
        out = io.BytesIO()
        image.save(out, format="PNG")
        profile = Profile(avatar=out.getvalue(), avatar_content_type="image/png")
        store_profile(identity.pk, profile)  # the files are written once the seed commits


# --- WhatsApp Cloud API: templates and a conversation outside the 24-hour window ------------
DEMO_TEMPLATES = [
    (
        "order_shipped",
        "UTILITY",
        "POSITIONAL",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}} has shipped"},
            {"type": "BODY", "text": "Hi {{1}}, your parcel is on its way and arrives {{2}}."},
            {"type": "FOOTER", "text": "Switchboard demo shop"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Track parcel",
                        "url": "https://shop.example.com/track/{{1}}",
                    },
                    {"type": "QUICK_REPLY", "text": "Stop updates"},
                ],
            },
        ],
    ),
    (
        "follow_up",
        "UTILITY",
        "NAMED",
        [
            {
                "type": "BODY",
                "text": "Hello {{first_name}}, we have an answer about your request. Reply to "
                "this message to continue the conversation.",
            }
        ],
    ),
]


def _whatsapp_cloud_demo(channel: Channel, now) -> None:
    """The demo WhatsApp channel as a Cloud API number with synced templates, and one of its
    conversations quiet for 30 hours, so the reply box offers the template picker. The token
    is a placeholder: a send fails with Meta's reason until an admin enters a real one."""
    from integrations.whatsapp_cloud.models import WhatsAppTemplate

    channel.config = {
        "phone_number_id": "100000000000001",
        "business_account_id": "100000000000002",
    }
    channel.secrets = {
        **channel.secrets,
        "access_token": "demo-placeholder-token",
        "app_secret": secrets.token_urlsafe(24),
        "verify_token": secrets.token_urlsafe(12),
    }
    channel.save(update_fields=["config", "secrets"])
    WhatsAppTemplate.objects.bulk_create(
        [
            WhatsAppTemplate(
                channel=channel,
                template_id=f"demo-{n}",
                name=name,
                language="en_US",
                category=category,
                status="APPROVED",
                components=components,
                parameter_format=parameter_format,
                synced_at=now,
            )
            for n, (name, category, parameter_format, components) in enumerate(DEMO_TEMPLATES)
        ]
    )
    quiet = Conversation.objects.filter(channel=channel).order_by("-id").first()
    if quiet is None:
        return
    shift = timedelta(hours=30)
    for message in Message.objects.filter(conversation=quiet):
        Message.objects.filter(pk=message.pk).update(created_at=message.created_at - shift)
    Conversation.objects.filter(pk=quiet.pk).update(
        last_message_at=quiet.last_message_at - shift,
        last_inbound_at=quiet.last_inbound_at - shift,
    )


def seed_team_workflow(*, manager, colleague, team) -> None:
    """Labels on conversations and a contact, canned replies, a note mentioning the demo
    manager, and activity lines — all written through the services the inbox uses."""
    from communications.models import CannedResponse
    from communications.services.contacts import change_contact_labels
    from communications.services.conversations import update_conversation
    from communications.services.labels import change_conversation_labels
    from communications.services.send import send_message
    from crm.models import Label

    labels = {
        name: Label.objects.get_or_create(name=name, defaults={"color": color})[0]
        for name, color in [
            ("vip", "#9333ea"),
            ("refund", "#dc2626"),
            ("shipping", "#2563eb"),
            ("wholesale", "#16a34a"),
        ]
    }

    def locked(conversation_id):
        return (
            Conversation.objects.select_related("contact", "channel", "assignee")
            .select_for_update(of=("self",))
            .get(pk=conversation_id)
        )

    by_name = dict(Conversation.objects.values_list("contact__name", "id"))
    plan = [
        ("Olena Kovalenko", ["refund", "vip"], manager),
        ("Marek Nowak", ["shipping"], colleague),
        ("Diego Fernández", ["shipping"], manager),
        ("Yusuf Demir", ["refund"], manager),
        ("Priya Sharma", ["wholesale"], colleague),
    ]
    for name, names, actor in plan:
        if name in by_name:
            change_conversation_labels(
                locked(by_name[name]), add=[labels[n] for n in names], actor=actor
            )
    if {"Priya Sharma", "Lukas Schneider", "Emma Johansson", "Chiara Rossi"} <= set(by_name):
        change_contact_labels(locked(by_name["Priya Sharma"]).contact, add=[labels["wholesale"]])
        update_conversation(
            locked(by_name["Lukas Schneider"]), changes={"assignee_id": colleague.pk}, actor=manager
        )
        update_conversation(
            locked(by_name["Emma Johansson"]), changes={"status": "resolved"}, actor=colleague
        )
        update_conversation(
            locked(by_name["Chiara Rossi"]),
            changes={"status": "snoozed", "snoozed_until": timezone.now() + timedelta(hours=20)},
            actor=manager,
        )
        send_message(
            conversation=locked(by_name["Diego Fernández"]),
            user=colleague,
            client_id="demo-mention-note",
            content="@manager he has asked about this parcel twice, can you take this one?",
            kind=Message.Kind.NOTE,
        )
    for shortcut, title, content, owner in [
        (
            "shipping",
            "Shipping times",
            "Hi {{contact.first_name}}, your order leaves our warehouse within 24 hours; "
            "you will get the tracking link by email. {{agent.name}}",
            None,
        ),
        (
            "refund",
            "Refund started",
            "Hello {{contact.name}}, I have started your refund (ref. #{{conversation.id}}). "
            "It reaches your account in 3-5 working days.",
            None,
        ),
        ("thanks", "Thanks", "Thank you {{contact.first_name}}! Anything else I can do?", manager),
    ]:
        CannedResponse.objects.get_or_create(
            shortcut=shortcut,
            team=None if owner else team,
            owner=owner,
            defaults={"title": title, "content": content},
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


def _outgoing_webhook_demo(now) -> None:
    """An integrator's subscription with a few deliveries in its log: one delivered at once, one
    after a 500, one given up. Left disabled: the demo must not post to a URL that is not
    there (point it at your endpoint in the admin and enable it)."""
    from communications.models import (
        OutgoingWebhookAttempt,
        OutgoingWebhookDelivery,
        OutgoingWebhookSubscription,
        RealtimeEvent,
    )
    from communications.serializers import message_payload
    from communications.services.outgoing_webhooks import new_secret

    subscription = OutgoingWebhookSubscription.objects.create(
        name="ERP sync (demo)",
        url="https://erp.example.com/switchboard/webhook",
        events=["message.created", "conversation.updated", "contact.updated"],
        secrets={"signing_secret": new_secret()},
        is_active=False,
        disabled_reason="demo: point it at your endpoint and enable it",
        disabled_at=now,
    )
    messages = Message.objects.select_related("conversation").order_by("-created_at")[:3]
    stories = [
        [(200, 84, "")],
        [(500, 1312, "HTTP 500: upstream timeout"), (200, 97, "")],
        [(None, 10000, "ReadTimeout: read timed out")] * 3,
    ]
    for n, (message, attempts) in enumerate(zip(messages, stories, strict=False)):
        event = RealtimeEvent.objects.create(
            type="message.created",
            channel_id=message.channel_id,
            conversation_id=message.conversation_id,
            payload=message_payload(message),
        )
        sent_at = now - timedelta(hours=3 - n)
        delivered = attempts[-1][0] == 200
        delivery = OutgoingWebhookDelivery.objects.create(
            subscription=subscription,
            event_id=event.pk,
            event_type=event.type,
            conversation_id=message.conversation_id,
            created_at=sent_at,
            state="delivered" if delivered else "failed",
            attempts=len(attempts),
            next_attempt_at=sent_at,
            give_up_after=sent_at + timedelta(hours=24),
            last_status_code=attempts[-1][0],
            last_error=attempts[-1][2],
            delivered_at=sent_at + timedelta(minutes=len(attempts)) if delivered else None,
        )
        OutgoingWebhookAttempt.objects.bulk_create(
            OutgoingWebhookAttempt(
                delivery=delivery,
                started_at=sent_at + timedelta(minutes=i),
                status_code=code,
                latency_ms=latency,
                ok=code == 200,
                error=error,
            )
            for i, (code, latency, error) in enumerate(attempts)
        )
