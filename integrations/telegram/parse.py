"""A Telegram `Update` → an `InboundMessage` (a `message`) or an `Edit` (an `edited_message`).

Only translation lives here: no database, no network. Telegram's `message_id` is unique only
inside its chat, so a message's id for us is `<chat id>:<message_id>` (unique per channel, as
ingest needs). Media comes out as an `InboundAttachment` naming the `file_id` and without
bytes; the worker downloads them before ingest (`media.py`).
"""

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime

from communications.models import Message
from communications.services.ingest import InboundAttachment, InboundMessage, InboundSender

from .schema import shape_error

# Update kinds the bot asks Telegram for (setWebhook's allowed_updates).
ALLOWED_UPDATES = ["message", "edited_message"]


class PayloadError(ValueError):
    """The body is JSON but not a Telegram update; the text names what is wrong."""


@dataclass(frozen=True)
class Edit:
    external_id: str
    content: str
    edit_id: str
    edited_at: datetime | None
    # The whole message as it reads now: stored as new if the original never reached us.
    message: InboundMessage


@dataclass(frozen=True)
class ParsedUpdate:
    update_id: int
    message: InboundMessage | None = None
    edit: Edit | None = None


def message_external_id(chat_id, message_id) -> str:
    return f"{chat_id}:{message_id}"


def parse_update(payload) -> ParsedUpdate:
    problem = shape_error(payload)
    if problem:
        raise PayloadError(problem)
    update_id = payload["update_id"]
    if "message" in payload:
        return ParsedUpdate(update_id, message=_message(payload["message"]))
    if "edited_message" in payload:
        raw = payload["edited_message"]
        message = _message(raw)
        edited_at = _timestamp(raw.get("edit_date"))
        return ParsedUpdate(
            update_id,
            edit=Edit(
                external_id=message.external_id or "",
                content=message.content,
                edit_id=str(raw.get("edit_date") or ""),
                edited_at=edited_at,
                message=message,
            ),
        )
    return ParsedUpdate(update_id)  # an update kind we do not show


def _name(user: dict) -> str:
    return " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)[:255]


def _sender(raw: dict) -> InboundSender:
    user = raw.get("from")
    if user is None:  # a post signed by a chat, not a user: the chat speaks
        chat = raw["chat"]
        return InboundSender(
            external_id=str(chat["id"]),
            name=chat.get("title") or _name(chat),
            username=chat.get("username") or "",
        )
    return InboundSender(
        external_id=str(user["id"]), name=_name(user), username=user.get("username") or ""
    )


def _message(raw: dict) -> InboundMessage:
    chat_id = raw["chat"]["id"]
    content = raw.get("text") or raw.get("caption") or ""
    kind = Message.Kind.TEXT
    attachments: tuple[InboundAttachment, ...] = ()
    metadata: dict = {"telegram_chat_type": raw["chat"].get("type", "")}
    if raw.get("photo"):
        # Sizes of one photo, smallest first as Telegram sends them: keep the largest.
        largest = max(raw["photo"], key=lambda p: p.get("width", 0) * p.get("height", 0))
        kind = Message.Kind.IMAGE
        attachments = (_file(largest, "image/jpeg", "photo", ".jpg"),)
    elif raw.get("sticker"):
        sticker = raw["sticker"]
        kind = Message.Kind.STICKER
        content = content or sticker.get("emoji", "")
        if not (sticker.get("is_animated") or sticker.get("is_video")):
            attachments = (_file(sticker, "image/webp", "sticker", ".webp"),)
        elif sticker.get("thumbnail"):  # animated (TGS) or video (WEBM): its still picture
            attachments = (_file(sticker["thumbnail"], "", "sticker", ".webp"),)
    elif raw.get("animation") or raw.get("video") or raw.get("video_note"):
        video = raw.get("animation") or raw.get("video") or raw.get("video_note")
        kind = Message.Kind.VIDEO
        attachments = (_file(video, "video/mp4", "video", ".mp4"),)
    elif raw.get("voice"):
        kind = Message.Kind.AUDIO
        attachments = (_file(raw["voice"], "audio/ogg", "voice", ".ogg"),)
    elif raw.get("audio"):
        kind = Message.Kind.AUDIO
        attachments = (_file(raw["audio"], "audio/mpeg", "audio", ".mp3"),)
    elif raw.get("document"):
        kind = Message.Kind.FILE
        attachments = (_file(raw["document"], "application/octet-stream", "file", ""),)
    elif raw.get("location"):
        location = raw["location"]
        venue = raw.get("venue") or {}
        kind = Message.Kind.LOCATION
        coords = f"{location['latitude']}, {location['longitude']}"
        label = ", ".join(p for p in (venue.get("title"), venue.get("address")) if p)
        content = f"{label} ({coords})" if label else coords
        metadata["location"] = {**location, **({"venue": venue} if venue else {})}
    elif raw.get("contact"):
        contact = raw["contact"]
        content = "Contact: " + ", ".join(p for p in (_name(contact), contact["phone_number"]) if p)
        metadata["contact"] = contact
    elif not content:
        shown = sorted(k for k in raw if k not in _ENVELOPE)
        kind_name = shown[0] if shown else "empty"
        content = f"[a Telegram message of type '{kind_name}' that Switchboard cannot show]"
    reply = raw.get("reply_to_message")
    return InboundMessage(
        sender=_sender(raw),
        content=content,
        kind=kind,
        external_id=message_external_id(chat_id, raw["message_id"]),
        conversation_external_id=str(chat_id),
        timestamp=_timestamp(raw.get("date")),
        attachments=attachments,
        reply_to_external_id=message_external_id(chat_id, reply["message_id"]) if reply else None,
        metadata=metadata,
    )


# Fields every message has, whatever it carries.
_ENVELOPE = {
    "message_id",
    "message_thread_id",
    "from",
    "sender_chat",
    "date",
    "edit_date",
    "chat",
    "reply_to_message",
    "entities",
    "caption_entities",
    "has_protected_content",
    "is_topic_message",
    "forward_origin",
    "via_bot",
    "link_preview_options",
    "reply_markup",
}


def _file(raw: dict, default_mime: str, label: str, extension: str) -> InboundAttachment:
    named = mimetypes.guess_type(raw.get("file_name") or "")[0]
    mime_type = (raw.get("mime_type") or named or default_mime).split(";")[0].strip()
    unique = raw.get("file_unique_id") or raw["file_id"][-16:]
    extension = mimetypes.guess_extension(mime_type) or extension if mime_type else extension
    duration = raw.get("duration")
    return InboundAttachment(
        mime_type=mime_type,
        filename=raw.get("file_name") or f"telegram-{label}-{unique}{extension}",
        provider_ref=raw["file_id"],
        width=raw.get("width"),
        height=raw.get("height"),
        duration_ms=duration * 1000 if isinstance(duration, int) else None,
    )


def _timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
