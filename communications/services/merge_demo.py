"""Demo data for merge and split (called by crm/management/commands/seed_demo.py): the same
person on WhatsApp and by email, merged (undoable for a day after seeding), and a customer
who wrote from the website chat and WhatsApp with the same number written differently, left
for the manager to merge from the card's "Possible duplicates"."""

from datetime import timedelta

from django.utils import timezone

from ..models import Channel
from .ingest import InboundMessage, InboundSender, ingest_messages
from .merge import merge_conversations


def seed_merge_demo(by_kind: dict, *, manager) -> None:
    now = timezone.now()
    whatsapp, email, chat = (
        by_kind[Channel.Kind.WHATSAPP],
        by_kind[Channel.Kind.EMAIL],
        by_kind[Channel.Kind.API],
    )

    def say(channel, sender, minutes_ago, *texts, subject=""):
        items = [
            InboundMessage(
                sender=sender,
                content=text,
                subject=subject,
                timestamp=now - timedelta(minutes=minutes_ago - n),
            )
            for n, text in enumerate(texts)
        ]
        return ingest_messages(channel, items)[0].message.conversation

    lena_whatsapp = say(
        whatsapp,
        InboundSender(external_id="4915155501234", name="Lena Fischer", phone="+49 151 5550 1234"),
        95,
        "Hi! I sent you an email about my order SB-2031 yesterday",
        "Did you get it? The table arrived with a scratch",
    )
    lena_email = say(
        email,
        InboundSender(
            external_id="lena.fischer@example.com",
            name="Lena Fischer",
            email="lena.fischer@example.com",
        ),
        26 * 60,
        "Hello, my oak table (order SB-2031) arrived with a deep scratch on the top. "
        "Photos attached. Can you send a replacement?",
        subject="Scratched table, order SB-2031",
    )
    merge_conversations(lena_whatsapp.pk, lena_email.pk, actor=manager, merge_contacts=True)

    # A duplicate waiting to be merged: the same phone, formatted differently.
    say(
        chat,
        InboundSender(external_id="web-visitor-7731", name="Tom Becker", phone="+49 170 5550 9876"),
        40,
        "Is the walnut shelf back in stock?",
    )
    say(
        whatsapp,
        InboundSender(external_id="4917055509876", name="Tom B.", phone="+49 (170) 555-09876"),
        12,
        "Hi, Tom here, I asked on the website about the walnut shelf",
    )
