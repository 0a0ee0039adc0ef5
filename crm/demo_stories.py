"""The demo's conversations: fourteen customers, each with a story of their own, spread over every
channel kind, so the first screen shows what Switchboard does — photos, an invoice PDF with its
preview, a voice note, a location, private notes, a reply quoted, an edited message, a send that
failed with the platform's reason and one that succeeded on its second attempt, snoozed,
pending and resolved conversations, unread counts, and email with its subject, Cc and HTML."""

import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.core.files.base import ContentFile

from communications.files import store_after_commit
from communications.models import (
    Attachment,
    Channel,
    ContactIdentity,
    Conversation,
    Message,
    WebhookDelivery,
)
from crm import demo_media
from crm.models import Contact, Job, Order

IN, OUT, NOTE = "in", "out", "note"
SHOP = "support@example.com"


@dataclass
class Story:
    name: str
    kind: str  # channel kind
    handle: str  # phone, email address or username
    status: str = Conversation.Status.OPEN
    assignee: str | None = "manager"  # "manager", "alex" or None
    hours_ago: float = 1
    snooze_hours: float | None = None
    subject: str = ""
    lines: list[tuple] = field(default_factory=list)  # (who, text, extras)


S = Conversation.Status
K = Channel.Kind

STORIES = [
    Story(
        "Olena Kovalenko",
        K.WHATSAPP,
        "+380671234567",
        hours_ago=0.2,
        lines=[
            (IN, "Hi! The sneakers arrived but the left one has a scuff on the toe 😕", {}),
            (IN, "", {"media": ("photo", "Scuffed sneaker, left toe", (182, 64, 52))}),
            (OUT, "Oh no, sorry about that! Thanks for the photo.", {}),
            (NOTE, "Courier damage most likely — @alex can you check the batch SB-1000?", {}),
            (IN, "Can you send a new pair or should I return these first?", {}),
        ],
    ),
    Story(
        "Marek Nowak",
        K.WHATSAPP,
        "+48601234567",
        assignee="alex",
        hours_ago=2,
        lines=[
            (IN, "Dzień dobry! Do you deliver to Kraków on Saturdays?", {}),
            (OUT, "Yes — Saturday delivery is +€4, available until 14:00.", {"status": "read"}),
            (IN, "Super. Here's where the parcel should go:", {}),
            (IN, "50.0614, 19.9366", {"kind": Message.Kind.LOCATION}),
            (OUT, "Got it, noted on your order SB-1010 👍", {"status": "delivered"}),
        ],
    ),
    Story(
        "Sophie Martin",
        K.WHATSAPP,
        "+33612345678",
        status=S.RESOLVED,
        hours_ago=30,
        lines=[
            (IN, "Bonjour, could I get the invoice for my order for my company?", {}),
            (OUT, "Of course — here it is.", {"media": ("invoice", "SB-1020")}),
            (IN, "Parfait, merci !", {}),
            (NOTE, "Invoice sent with VAT number FR40303265045. Resolved.", {}),
        ],
    ),
    Story(
        "Lukas Schneider",
        K.TELEGRAM,
        "lukas_sch",
        hours_ago=0.5,
        assignee=None,
        lines=[
            (IN, "Hallo, is the rain jacket waterproof or only water-resistant?", {}),
            (IN, "I'm cycling to work every day 🚲", {}),
        ],
    ),
    Story(
        "Aisha Rahman",
        K.TELEGRAM,
        "aisha_r",
        hours_ago=5,
        status=S.PENDING,
        lines=[
            (IN, "", {"media": ("voice", "voice-note.wav")}),
            (OUT, "Thanks Aisha! We'll check the exchange options and come back to you.", {}),
            (NOTE, "She wants size M instead of L — waiting for stock on Tuesday.", {}),
        ],
    ),
    Story(
        "Diego Fernández",
        K.MESSENGER,
        "diego.fernandez",
        hours_ago=1.5,
        lines=[
            (IN, "Hola! I ordered the ceramic mug set last week", {}),
            (IN, "Tracking says delivered but nothing here", {}),
            (
                OUT,
                "Sorry Diego — I've opened a claim with the courier.",
                {
                    "status": "failed",
                    "reason": "(#10) This message is sent outside of allowed window.",
                },
            ),
            (NOTE, "Send failed: outside Messenger's 24 h window. Ask him to write again.", {}),
        ],
    ),
    Story(
        "Chiara Rossi",
        K.MESSENGER,
        "chiara.rossi",
        hours_ago=26,
        lines=[
            (IN, "Ciao! Will the linen shirt be back in white?", {}),
            (
                OUT,
                "It's due back next week — I'll message you the day it's in.",
                {"status": "read"},
            ),
            (NOTE, "Snoozed until the restock lands.", {}),
        ],
    ),
    Story(
        "Noah Jansen",
        K.INSTAGRAM,
        "noahjansen",
        hours_ago=0.8,
        assignee=None,
        lines=[
            (IN, "Saw your story with the new sneakers 😍 do they come in 45?", {"story": True}),
            (IN, "", {"media": ("photo", "Screenshot of the story", (40, 90, 160))}),
        ],
    ),
    Story(
        "Emma Johansson",
        K.INSTAGRAM,
        "emma.j",
        assignee="alex",
        hours_ago=31,
        lines=[
            (IN, "Is the discount code still valid?", {}),
            (OUT, "Yes, SPRING15 works until Sunday.", {"status": "read"}),
            (IN, "Perfect, ordering now!", {}),
        ],
    ),
    Story(
        "Yusuf Demir",
        K.EMAIL,
        "yusuf.demir@example.com",
        hours_ago=3,
        subject="Wrong size delivered — order SB-1090",
        lines=[
            (
                IN,
                "Hello,\n\nI ordered the rain jacket in L but received an M. Could you "
                "exchange it?\n\nBest regards,\nYusuf",
                {"cc": ["anna.demir@example.com"]},
            ),
            (
                OUT,
                "Hi Yusuf,\n\nsorry for the mix-up. A prepaid return label is attached to "
                "the next email; the L ships as soon as the M is scanned.\n\nMaria",
                {},
            ),
            (IN, "Thanks, that works.\n\n> Hi Yusuf,\n> sorry for the mix-up.", {}),
        ],
    ),
    Story(
        "Hana Novák",
        K.EMAIL,
        "hana.novak@example.com",
        hours_ago=50,
        status=S.RESOLVED,
        subject="Invoice for order SB-1100",
        lines=[
            (IN, "Good afternoon, please send the invoice for SB-1100 to my company address.", {}),
            (OUT, "Dear Hana, the invoice is attached.", {"media": ("invoice", "SB-1100")}),
        ],
    ),
    Story(
        "Liam O'Brien",
        K.EMAIL,
        "liam.obrien@example.com",
        hours_ago=0.3,
        assignee=None,
        subject="Gift wrapping?",
        lines=[
            (
                IN,
                "Hi there — can you gift-wrap an order and leave the price off the slip? "
                "It's for my mum's birthday on Friday.",
                {"html": True},
            ),
        ],
    ),
    Story(
        "Priya Sharma",
        K.API,
        "web-priya-7f3a",
        hours_ago=0.1,
        lines=[
            (IN, "Hi, I'm on your website chat — do you have a size guide for the sneakers?", {}),
            (
                OUT,
                "Hi Priya! Yes: they run half a size small; most people go one up.",
                {"status": "delivered", "attempts": 2},
            ),
            (IN, "Thanks! Ordering a 39 then", {"edited": True}),
        ],
    ),
    Story(
        "Tomás Silva",
        K.API,
        "web-tomas-91bc",
        assignee="alex",
        hours_ago=12,
        status=S.SNOOZED,
        snooze_hours=3,
        lines=[
            (IN, "Can I pick up my order from your Lisbon store instead?", {}),
            (OUT, "Let me ask the store team and get back to you this afternoon.", {}),
        ],
    ),
]


def load_stories(channels: dict[str, Channel], users: dict, team, rng: random.Random, now) -> int:
    """Create every story's contact, orders, identity, conversation and messages."""
    for index, story in enumerate(STORIES):
        _load(story, index, channels[story.kind], users, team, rng, now)
    _webhook_log(channels, now)
    _finished_import(channels[K.EMAIL], users["manager"], now)
    return len(STORIES)


def _webhook_log(channels: dict[str, Channel], now) -> None:
    """A few deliveries in the webhook log, errors included, so admin → Webhook deliveries and
    the dashboard show what staff will see when a platform misbehaves."""
    api, whatsapp = channels[K.API], channels[K.WHATSAPP]
    Verdict, Outcome = WebhookDelivery.Verdict, WebhookDelivery.Outcome
    rows = [
        (
            api,
            "api",
            40,
            b'{"external_id":"web-1","sender":{"id":"web-priya-7f3a"},"text":"Hi"}',
            Verdict.ACCEPTED,
            Outcome.DONE,
            "",
            "web-1",
        ),
        (
            api,
            "api",
            39,
            b'{"external_id":"web-1","sender":{"id":"web-priya-7f3a"},"text":"Hi"}',
            Verdict.DUPLICATE,
            Outcome.SKIPPED,
            "already received as delivery web-1",
            "",
        ),
        (
            whatsapp,
            "whatsapp",
            25,
            b'{"object":"whatsapp_business_account","entry":[]}',
            Verdict.BAD_SIGNATURE,
            Outcome.SKIPPED,
            "X-Hub-Signature-256 does not match the body signed with the app secret",
            "",
        ),
        (
            whatsapp,
            "whatsapp",
            12,
            b'{"object": "whatsapp_business_account", "entry": [',
            Verdict.MALFORMED,
            Outcome.SKIPPED,
            "the body is not JSON: Expecting value at byte 50",
            "",
        ),
    ]
    for channel, source, minutes, body, verdict, outcome, reason, key in rows:
        WebhookDelivery.objects.create(
            channel=channel,
            source=source,
            received_at=now - timedelta(minutes=minutes),
            headers={"Content-Type": "application/json"},
            body=body,
            verdict=verdict,
            reason=reason,
            dedup_key=key,
            outcome=outcome,
            attempts=1 if outcome == Outcome.DONE else 0,
            processed_at=now - timedelta(minutes=minutes) if outcome == Outcome.DONE else None,
        )


def _finished_import(channel: Channel, user, now) -> None:
    """A mailbox import that ran (admin → Jobs), as staff see one after the first import."""
    Job.objects.create(
        kind="email_import",
        lock_key="email-account:demo",
        title=f"Import the mailbox of {channel.name}",
        params={"channel_id": channel.pk},
        state=Job.State.DONE,
        progress={"scanned": 1240, "stored": 1187, "total": 1240},
        result={"scanned": 1240, "stored": 1187},
        requested_by=user,
        started_at=now - timedelta(days=2, minutes=4),
        heartbeat_at=now - timedelta(days=2),
        finished_at=now - timedelta(days=2),
    )


def _load(story: Story, index: int, channel: Channel, users: dict, team, rng, now) -> None:
    is_email = story.kind == K.EMAIL
    is_phone = story.handle.startswith("+")
    contact = Contact.objects.create(
        name=story.name,
        phone=story.handle if is_phone else "",
        email=story.handle if is_email else "",
    )
    for n in range(rng.randint(1, 3)):
        Order.objects.create(
            contact=contact,
            number=f"SB-{1000 + index * 10 + n}",
            title=rng.choice(["Linen shirt", "Ceramic mug set", "Rain jacket", "Sneakers"]),
            status=rng.choice(list(Order.Status.values)),
            amount=Decimal(rng.randint(1500, 25000)) / 100,
            ordered_at=now - timedelta(days=rng.randint(1, 60)),
        )
    external_id = story.handle.lstrip("+") if is_phone else story.handle
    ContactIdentity.objects.create(
        channel=channel,
        contact=contact,
        external_id=external_id,
        display_name=story.name,
        username="" if (is_phone or is_email) else story.handle,
    )
    started = now - timedelta(hours=story.hours_ago)
    conversation = Conversation.objects.create(
        channel=channel,
        contact=contact,
        external_id=f"<thread-{index}@example.com>" if is_email else external_id,
        subject=story.subject,
        status=story.status,
        snoozed_until=now + timedelta(hours=story.snooze_hours) if story.snooze_hours else None,
        assignee=users.get(story.assignee),
        team=team,
        last_message_at=started,
    )
    unread, previous, last_inbound = 0, None, None
    for position, (who, text, extras) in enumerate(story.lines):
        created = started + timedelta(minutes=position * 3)
        message = _message(
            story, conversation, contact, users, who, text, extras, created, position
        )
        if extras.get("quote") and previous is not None:
            message.reply_to = previous
        if who == IN:
            unread += 1
            last_inbound = created
        elif who == OUT:
            unread = 0
        if who != NOTE:
            conversation.last_message_preview = (text or _media_preview(extras))[:200]
        previous = message
    conversation.last_message_at = created
    conversation.last_inbound_at = last_inbound
    conversation.unread_count = 0 if story.status == S.RESOLVED else unread
    conversation.save()


def _message(story, conversation, contact, users, who, text, extras, created, position) -> Message:
    inbound = who == IN
    media = extras.get("media")
    kind = extras.get("kind") or (
        Message.Kind.NOTE if who == NOTE else _media_kind(media) if media else Message.Kind.TEXT
    )
    if inbound:
        status = Message.Status.RECEIVED
    elif who == NOTE:
        status = Message.Status.SENT
    else:
        status = extras.get("status", Message.Status.READ)
    metadata = {}
    if story.kind == K.EMAIL and who != NOTE:
        metadata["email"] = _email_metadata(story, conversation, text, inbound, extras, position)
    if extras.get("story"):
        metadata["story_reply"] = {"id": "", "url": ""}
    message = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.INBOUND if inbound else Message.Direction.OUTBOUND,
        kind=kind,
        content=text,
        status=status,
        failure_reason=extras.get("reason", ""),
        send_attempts=extras.get("attempts", 0 if inbound or who == NOTE else 1),
        external_id=None
        if who == NOTE or status == "failed"
        else f"demo-{conversation.pk}-{position}",
        sender_contact=contact if inbound else None,
        sender_user=None if inbound else users["manager"],
        is_edited=bool(extras.get("edited")),
        metadata=metadata,
        created_at=created,
    )
    if media:
        _attach(message, media)
    return message


def _media_kind(media) -> str:
    return {"photo": Message.Kind.IMAGE, "invoice": Message.Kind.FILE, "voice": Message.Kind.AUDIO}[
        media[0]
    ]


def _media_preview(extras) -> str:
    media = extras.get("media")
    return {"photo": "📷 Photo", "invoice": "📄 Invoice", "voice": "🎤 Voice message"}.get(
        media[0] if media else "", ""
    )


def _attach(message: Message, media) -> None:
    what = media[0]
    if what == "photo":
        content, name, mime = demo_media.photo(media[1], media[2]), "photo.jpg", "image/jpeg"
        size = (480, 360)
    elif what == "invoice":
        lines = [("Rain jacket, L", "€89.00"), ("Shipping", "€4.90"), ("VAT 20%", "€18.78")]
        content, name, mime = (
            demo_media.invoice_pdf(media[1], lines),
            f"invoice-{media[1]}.pdf",
            "application/pdf",
        )
        size = (None, None)
    else:
        content, name, mime = demo_media.voice_note(), media[1], "audio/wav"
        size = (None, None)
    attachment = Attachment(
        message=message,
        filename=name,
        mime_type=mime,
        size=len(content),
        width=size[0],
        height=size[1],
    )
    store_after_commit(attachment, ContentFile(content), name)
    attachment.save()


def _email_metadata(story, conversation, text, inbound, extras, position) -> dict:
    customer = {"name": story.name, "address": story.handle}
    shop = {"name": "Demo Shop Support", "address": SHOP}
    email = {
        "message_id": f"<demo-{conversation.pk}-{position}@example.com>",
        "subject": ("Re: " if position else "") + story.subject,
        "from": customer if inbound else shop,
        "to": [shop if inbound else customer],
        "cc": [{"name": "", "address": a} for a in extras.get("cc", [])],
        "in_reply_to": [],
        "references": [],
    }
    if extras.get("html"):
        paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        email["html"] = (
            f"<div style='font-family:Georgia'>{paragraphs}<p><b>— {story.name}</b></p></div>"
        )
    return email
