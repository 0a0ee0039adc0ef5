"""Meta's WhatsApp Cloud API webhook payload → `InboundMessage`s and status updates.

Only translation lives here: no database, no network. Media messages come out with an
`InboundAttachment` that names Meta's media id (`provider_ref`) and has no bytes yet; the
webhook downloads them before ingest (see `media.py`).
"""

import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime

from communications.models import Message
from communications.services.ingest import InboundAttachment, InboundMessage, InboundSender

from .schema import shape_error

MEDIA_TYPES = {
    "image": Message.Kind.IMAGE,
    "video": Message.Kind.VIDEO,
    "audio": Message.Kind.AUDIO,
    "document": Message.Kind.FILE,
    "sticker": Message.Kind.STICKER,
}
STATUSES = {
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
}
# Graph error code for a free-form message outside the 24-hour customer-service window.
REENGAGEMENT_CODE = 131047
OUTSIDE_WINDOW = (
    "outside WhatsApp's 24-hour customer-service window: only approved templates can be sent"
)


class PayloadError(ValueError):
    """The body is JSON but not a WhatsApp webhook; the text names what is wrong."""


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Reaction:
    """A customer's emoji on a message (`emoji` "" when they took it back)."""

    target_external_id: str
    sender: str
    emoji: str
    external_id: str


@dataclass
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)

    @property
    def has_media(self) -> bool:
        return any(a.data is None for m in self.messages for a in m.attachments)


def parse_payload(payload, *, phone_number_id: str = "") -> ParsedWebhook:
    """Every message and status of one delivery, in order.

    Changes addressed to another phone number (one Meta app can serve several numbers) are
    skipped when `phone_number_id` is given.
    """
    problem = shape_error(payload)
    if problem:
        raise PayloadError(problem)
    parsed = ParsedWebhook()
    for entry in payload["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            number = str((value.get("metadata") or {}).get("phone_number_id", ""))
            if phone_number_id and number and number != str(phone_number_id):
                continue
            _parse_value(value, parsed)
    return parsed


def _parse_value(value: dict, parsed: ParsedWebhook) -> None:
    names = {}
    for contact in value.get("contacts") or []:
        if isinstance(contact, dict) and contact.get("wa_id"):
            names[str(contact["wa_id"])] = (contact.get("profile") or {}).get("name", "")
    for raw in value.get("messages") or []:
        if raw.get("type") == "reaction":
            reaction = _reaction(raw)
            if reaction is not None:
                parsed.reactions.append(reaction)
            continue
        message = _message(raw, names)
        if message is not None:
            parsed.messages.append(message)
    for raw in value.get("statuses") or []:
        status = _status(raw)
        if status is not None:
            parsed.statuses.append(status)


def _message(raw: dict, names: dict[str, str]) -> InboundMessage | None:
    sender_digits = str(raw.get("from") or "")
    wamid = str(raw.get("id") or "")
    if not sender_digits or not wamid:
        raise PayloadError("a message needs 'from' and 'id'")
    kind_name = raw.get("type", "")
    content = ""
    kind = Message.Kind.TEXT
    attachments: tuple[InboundAttachment, ...] = ()
    metadata: dict = {"whatsapp_type": kind_name}
    if kind_name == "text":
        content = (raw.get("text") or {}).get("body", "")
    elif kind_name in MEDIA_TYPES:
        media = raw.get(kind_name) or {}
        if not media.get("id"):
            raise PayloadError(f"a {kind_name} message needs '{kind_name}.id'")
        kind = MEDIA_TYPES[kind_name]
        content = media.get("caption", "")
        mime_type = (media.get("mime_type") or "application/octet-stream").split(";")[0].strip()
        attachments = (
            InboundAttachment(
                mime_type=mime_type,
                filename=media.get("filename") or _filename(str(media["id"]), mime_type),
                provider_ref=str(media["id"]),
            ),
        )
    elif kind_name == "location":
        location = raw.get("location") or {}
        kind = Message.Kind.LOCATION
        label = ", ".join(p for p in (location.get("name"), location.get("address")) if p)
        coords = f"{location.get('latitude')}, {location.get('longitude')}"
        content = f"{label} ({coords})" if label else coords
        metadata["location"] = location
    elif kind_name == "contacts":
        shared = [c for c in raw.get("contacts") or [] if isinstance(c, dict)]
        content = "\n".join(_contact_line(c) for c in shared) or "[a shared contact]"
        metadata["contacts"] = shared
    elif kind_name == "button":
        # A quick-reply button of a template we sent: the label, and the payload we set.
        button = raw.get("button") or {}
        content = button.get("text", "")
        metadata["button_payload"] = button.get("payload", "")
    elif kind_name == "interactive":
        interactive = raw.get("interactive") or {}
        reply_type = interactive.get("type", "")
        reply = interactive.get(reply_type) if reply_type in ("button_reply", "list_reply") else {}
        reply = reply or interactive.get("button_reply") or interactive.get("list_reply") or {}
        content = reply.get("title", "")
        if reply.get("description"):
            content = f"{content} — {reply['description']}"
        metadata["reply_id"] = reply.get("id", "")
    else:
        content = f"[a WhatsApp message of type '{kind_name}' that Switchboard cannot show]"
    reply_to = (raw.get("context") or {}).get("id")
    return InboundMessage(
        sender=InboundSender(
            external_id=sender_digits,
            name=names.get(sender_digits, ""),
            phone=f"+{sender_digits}",
        ),
        content=content,
        kind=kind,
        external_id=wamid,
        conversation_external_id=sender_digits,
        timestamp=_timestamp(raw.get("timestamp")),
        attachments=attachments,
        reply_to_external_id=str(reply_to) if reply_to else None,
        metadata=metadata,
    )


def _reaction(raw: dict) -> Reaction | None:
    reaction = raw.get("reaction") or {}
    target = reaction.get("message_id")
    if not target:
        return None
    return Reaction(
        target_external_id=str(target),
        sender=str(raw.get("from") or ""),
        emoji=str(reaction.get("emoji") or ""),  # absent: the customer removed it
        external_id=str(raw.get("id") or ""),
    )


def _contact_line(contact: dict) -> str:
    name = (
        (contact.get("name") or {}).get("formatted_name", "")
        if isinstance(contact.get("name"), dict)
        else ""
    )
    phones = [p.get("phone", "") for p in contact.get("phones") or [] if isinstance(p, dict)]
    return "Contact: " + " · ".join(part for part in (name, *phones) if part)


def _status(raw: dict) -> StatusUpdate | None:
    status = STATUSES.get(raw.get("status", ""))
    if status is None or not raw.get("id"):
        return None  # "deleted", "warning" and the like change nothing we show
    reason = ""
    if status == Message.Status.FAILED:
        reason = error_reason((raw.get("errors") or [{}])[0])
    return StatusUpdate(external_id=str(raw["id"]), status=status, reason=reason)


def error_reason(error: dict) -> str:
    """Meta's error, in words staff can act on."""
    if not isinstance(error, dict):
        return "WhatsApp reported a failure"
    code = error.get("code")
    title = error.get("title") or ""
    text = error.get("message") or ""
    details = (error.get("error_data") or {}).get("details") or ""
    meta = " — ".join(dict.fromkeys(p for p in (title, text, details) if p))
    if code == REENGAGEMENT_CODE:
        return f"{OUTSIDE_WINDOW} (WhatsApp: {meta or 'Re-engagement message'})"
    prefix = f"WhatsApp error {code}" if code else "WhatsApp error"
    return f"{prefix}: {meta}" if meta else prefix


def _timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _filename(media_id: str, mime_type: str) -> str:
    extension = mimetypes.guess_extension(mime_type) or ""
    return f"whatsapp-{media_id}{extension}"
