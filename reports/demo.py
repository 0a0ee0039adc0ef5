"""Demo history for the reports: the demo's customers wrote before, too. Each demo
conversation gets one to three earlier exchanges over the past four weeks (a question, a
manager's reply minutes or hours later, a resolution), the conversation's opening moves to the
first of them, and the rollups are built — so a new user's reports page shows plots.

No conversations are added (the demo keeps its fourteen); the older messages sit above each
story in its thread."""

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from communications.models import Activity, Conversation, Message
from communications.services.activity import conversation_line

from .rollups import local_zone, rebuild_rollups

QUESTIONS = [
    "Hi, do you ship to Austria?",
    "Is the linen shirt available in XL?",
    "Where is my order? It has been a week.",
    "Can I change the delivery address?",
    "Do you have a discount code for returning customers?",
    "How long does a refund usually take?",
    "The tracking link does not open, can you help?",
    "Can I pay on delivery?",
    "Is the ceramic mug set dishwasher safe?",
    "Could you send me the invoice again?",
]
ANSWERS = [
    "Yes, we do — delivery takes 3–5 working days.",
    "It is! I have reserved one for you.",
    "Sorry for the wait, your parcel is with the courier and arrives tomorrow.",
    "Done, the new address is on the order.",
    "Welcome back! WELCOME10 gives you 10% off.",
    "Refunds reach your card within 5 working days.",
    "Here is a fresh tracking link, it should work now.",
    "Yes, cash or card on delivery both work.",
    "They are, on the top rack.",
    "Sent, please check your inbox.",
]


def seed_report_history(now) -> dict:
    rng = random.Random(15)
    zone = local_zone()
    users = list(
        get_user_model().objects.filter(username__in=["manager", "alex"]).order_by("username")
    )
    # The demo's manager is a team lead: the reports are theirs to read.
    leads, _ = Group.objects.get_or_create(name="Team leads")
    leads.permissions.add(
        Permission.objects.get(content_type__app_label="reports", codename="view_reports")
    )
    leads.user_set.add(*[u for u in users if u.username == "manager"])
    conversations = list(Conversation.objects.order_by("id"))
    messages, lines = [], []
    first_day = now.astimezone(zone).date()
    for index, conversation in enumerate(conversations):
        responder = next((u for u in users if u.pk == conversation.assignee_id), None) or (
            users[index % len(users)] if users else None
        )
        moments = sorted(
            (now - timedelta(days=rng.randint(3, 27)))
            .astimezone(zone)
            .replace(
                hour=rng.choice((8, 9, 10, 11, 13, 14, 15, 16, 17, 19)),
                minute=rng.randint(0, 59),
            )
            for _ in range(1 + index % 3)
        )
        for episode, asked in enumerate(moments):
            topic = (index + episode * 3) % len(QUESTIONS)
            messages.append(
                _message(conversation, Message.Direction.INBOUND, QUESTIONS[topic], asked, None)
            )
            if responder is None:
                continue
            answered = asked + timedelta(minutes=rng.choice((2, 4, 7, 12, 25, 40, 75, 180, 420)))
            messages.append(
                _message(
                    conversation, Message.Direction.OUTBOUND, ANSWERS[topic], answered, responder
                )
            )
            resolved = answered + timedelta(minutes=rng.randint(10, 60 * 30))
            if (
                resolved < moments[episode + 1]
                if episode + 1 < len(moments)
                else resolved < now - timedelta(days=2, hours=6)
            ):
                line = conversation_line(
                    conversation,
                    Activity.Verb.STATUS,
                    {"status": Conversation.Status.OPEN},
                    {"status": Conversation.Status.RESOLVED},
                    actor=responder,
                    now=resolved,
                )
                lines.append(line)
        if conversation.status == Conversation.Status.RESOLVED:
            lines.append(
                conversation_line(
                    conversation,
                    Activity.Verb.STATUS,
                    {"status": Conversation.Status.OPEN},
                    {"status": Conversation.Status.RESOLVED},
                    actor=responder,
                    now=conversation.last_message_at + timedelta(minutes=20),
                )
            )
        Conversation.objects.filter(pk=conversation.pk).update(created_at=moments[0])
        first_day = min(first_day, moments[0].date())
    Message.objects.bulk_create(messages)
    Activity.objects.bulk_create(lines)
    return rebuild_rollups(first_day, now.astimezone(zone).date())


def _message(conversation, direction, text, moment, user) -> Message:
    inbound = direction == Message.Direction.INBOUND
    return Message(
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=direction,
        kind=Message.Kind.TEXT,
        content=text,
        status=Message.Status.RECEIVED if inbound else Message.Status.READ,
        sender_contact_id=conversation.contact_id if inbound else None,
        sender_user=user,
        created_at=moment,
    )
