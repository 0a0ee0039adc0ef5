"""Messenger / Instagram webhook payload → messages, echoes, receipts and reactions.

Only translation lives here: no database, no network. Attachments come out naming Meta's
CDN URL (`provider_ref`) with no bytes yet; the worker downloads them before ingest
(`media.py`). Payload shapes follow Meta's Messenger Platform webhook reference (`messages`,
`message_echoes`, `message_deliveries`, `message_reads`, `message_reactions`) and the Instagram
Messaging webhooks (`messages` incl. echoes, story replies and mentions, `messaging_seen`).
"""

import hashlib
import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime

from communications.models import Channel, Message
from communications.services.ingest import InboundAttachment, InboundMessage, InboundSender

from .schema import shape_error

# What each channel kind's deliveries say in "object".
OBJECTS = {Channel.Kind.MESSENGER: "page", Channel.Kind.INSTAGRAM: "instagram"}
MEDIA_KINDS = {
    "image": Message.Kind.IMAGE,
    "video": Message.Kind.VIDEO,
    "audio": Message.Kind.AUDIO,
    "file": Message.Kind.FILE,
}
FALLBACK_MIME = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "file": "application/octet-stream",
}
# The Send API's `metadata` comes back in the echo: how an echo names the message we sent.
OUR_METADATA_PREFIX = "switchboard:"


class PayloadError(ValueError):
    """The body is JSON but not a Messenger/Instagram webhook; the text names what is wrong."""


@dataclass(frozen=True)
class Echo:
    """A message the page (or the Instagram account) sent: ours, or from Meta's own inbox."""

    message: InboundMessage  # direction "out"; the customer as sender, so the chat is theirs
    our_message_id: int | None = None
    app_id: str = ""


@dataclass(frozen=True)
class Receipt:
    """Delivered or read, by message ids (`mids`) or by a time watermark."""

    customer_id: str
    status: str
    mids: tuple[str, ...] = ()
    watermark: datetime | None = None


@dataclass(frozen=True)
class Reaction:
    customer_id: str
    mid: str
    emoji: str  # "" when the reaction was taken back


@dataclass
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    echoes: list[Echo] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    deleted_mids: list[str] = field(default_factory=list)

    @property
    def has_media(self) -> bool:
        return any(
            a.data is None and a.provider_ref
            for m in self.messages + [e.message for e in self.echoes]
            for a in m.attachments
        )


def account_id(channel: Channel) -> str:
    """The page id (Messenger) or Instagram professional account id the channel answers for."""
    key = "instagram_account_id" if channel.kind == Channel.Kind.INSTAGRAM else "page_id"
    return str((channel.config or {}).get(key, ""))


def parse_payload(payload, *, kind: str, account: str = "") -> ParsedWebhook:
    """Every event of one delivery, in order. Entries for another page / account (one app
    can serve several) are skipped when `account` is given."""
    problem = shape_error(payload)
    if problem:
        raise PayloadError(problem)
    expected = OBJECTS.get(kind)
    if expected and payload["object"] != expected:
        raise PayloadError(
            f"object: '{payload['object']}' deliveries do not belong to a {kind} channel "
            f"(expected '{expected}')"
        )
    parsed = ParsedWebhook()
    for entry in payload["entry"]:
        if account and str(entry["id"]) != account:
            continue
        for event in entry.get("messaging") or []:
            _parse_event(event, str(entry["id"]), kind, parsed)
    return parsed


def _parse_event(event: dict, account: str, kind: str, parsed: ParsedWebhook) -> None:
    sender = str(event["sender"]["id"])
    recipient = str(event["recipient"]["id"])
    when = _timestamp(event.get("timestamp"))
    if "message" in event:
        raw = event["message"]
        if raw.get("is_echo") or sender == account:
            parsed.echoes.append(_echo(raw, recipient, when))
        elif raw.get("is_deleted"):
            parsed.deleted_mids.append(str(raw["mid"]))  # Instagram's "unsend"
        else:
            parsed.messages.append(_message(raw, sender, when, kind))
    elif "delivery" in event:
        delivery = event["delivery"]
        parsed.receipts.append(
            Receipt(
                sender,
                Message.Status.DELIVERED,
                tuple(str(m) for m in delivery.get("mids") or ()),
                _timestamp(delivery.get("watermark")),
            )
        )
    elif "read" in event:
        read = event["read"]
        mids = (str(read["mid"]),) if read.get("mid") else ()  # Instagram's messaging_seen
        parsed.receipts.append(
            Receipt(sender, Message.Status.READ, mids, _timestamp(read.get("watermark")))
        )
    elif "reaction" in event:
        reaction = event["reaction"]
        removed = reaction.get("action") == "unreact"
        emoji = "" if removed else (reaction.get("emoji") or reaction.get("reaction") or "")
        parsed.reactions.append(Reaction(sender, str(reaction["mid"]), emoji))
    elif "postback" in event:
        postback = event["postback"]
        # A tapped button: what the customer saw on it is what they "said".
        parsed.messages.append(
            InboundMessage(
                sender=InboundSender(external_id=sender),
                content=postback.get("title") or postback.get("payload") or "",
                external_id=str(postback["mid"]) if postback.get("mid") else None,
                conversation_external_id=sender,
                timestamp=when,
                metadata={"meta_type": "postback", "payload": postback.get("payload", "")},
            )
        )
    # Other events (optins, referrals, handovers…) change nothing we show.


def _message(raw: dict, customer: str, when, kind: str, *, outbound: bool = False):
    content = raw.get("text") or ""
    metadata: dict = {}
    attachments: list[InboundAttachment] = []
    message_kind = Message.Kind.TEXT
    links: list[str] = []
    for index, attachment in enumerate(raw.get("attachments") or []):
        kind_name = attachment.get("type", "")
        url = (attachment.get("payload") or {}).get("url") or attachment.get("url") or ""
        if kind_name in MEDIA_KINDS and url:
            if message_kind == Message.Kind.TEXT:
                message_kind = MEDIA_KINDS[kind_name]
            attachments.append(
                InboundAttachment(
                    mime_type=FALLBACK_MIME[kind_name],
                    filename=_filename(str(raw["mid"]), index, kind_name, url),
                    provider_ref=url,
                )
            )
        elif kind_name == "story_mention":
            # Meta's terms: a mention's media must not be stored; the CDN link is kept and
            # shown (it stops working when the story expires).
            metadata["story_mention"] = {"url": url}
            links.append(f"[Mentioned you in their story: {url}]" if url else "")
        elif url:
            # Shares, reels, posts, templates, fallbacks: the link is what we can show.
            title = attachment.get("title") or (attachment.get("payload") or {}).get("title")
            links.append(f"[{kind_name or 'link'}: {title + ' — ' if title else ''}{url}]")
        else:
            links.append(f"[a {kind_name or 'message'} Switchboard cannot show]")
    if raw.get("is_unsupported"):
        links.append(f"[a {kind.title()} message type Switchboard cannot show]")
    reply_to = raw.get("reply_to") or {}
    story = reply_to.get("story")
    if story:
        metadata["story_reply"] = {"id": str(story.get("id", "")), "url": story.get("url", "")}
        links.insert(0, f"[Replied to your story: {story.get('url', '')}]")
    content = "\n\n".join(part for part in [content, *links] if part)
    metadata["meta_type"] = "echo" if outbound else "message"
    return InboundMessage(
        sender=InboundSender(external_id=customer),
        content=content,
        kind=message_kind,
        external_id=str(raw["mid"]),
        conversation_external_id=customer,
        timestamp=when,
        attachments=tuple(attachments),
        reply_to_external_id=str(reply_to["mid"]) if reply_to.get("mid") else None,
        direction=Message.Direction.OUTBOUND if outbound else Message.Direction.INBOUND,
        metadata=metadata,
    )


def _echo(raw: dict, customer: str, when) -> Echo:
    message = _message(raw, customer, when, "", outbound=True)
    our_id = None
    tag = raw.get("metadata") or ""
    if tag.startswith(OUR_METADATA_PREFIX) and tag[len(OUR_METADATA_PREFIX) :].isdigit():
        our_id = int(tag[len(OUR_METADATA_PREFIX) :])
    app_id = str(raw.get("app_id") or "")
    if app_id:
        message.metadata["app_id"] = app_id
    return Echo(message, our_id, app_id)


def _timestamp(value) -> datetime | None:
    """Meta's times are milliseconds since the epoch."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _filename(mid: str, index: int, kind_name: str, url: str) -> str:
    path = url.split("?")[0].rstrip("/")
    name = path.rsplit("/", 1)[-1] if "/" in path else ""
    if name and "." in name and len(name) <= 120:
        return name
    extension = mimetypes.guess_extension(FALLBACK_MIME[kind_name]) or ""
    digest = hashlib.sha256(mid.encode()).hexdigest()[:10]
    return f"{kind_name}-{digest}-{index}{extension}"
