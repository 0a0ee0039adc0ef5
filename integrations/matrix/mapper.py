"""Matrix events → the ingest path, message changes and statuses. One mapper, two feeders.

`handle_events` is called by the sync loop (`manage.py matrix_sync`) and by the appservice's
webhook-log receiver (webhook.py) alike; everything it does is idempotent by Matrix event id,
so running both paths stores each message once. It stores a batch's new messages with one
`ingest_messages` call per channel (a fixed number of statements however many there are): the
message events gather until an event that may refer to them (an edit, a reaction, a deletion,
a status, a membership change) or the end of the batch, then go in together, so every event
still sees those before it stored. Messages already stored are skipped before their media is
downloaded again (a retried or re-sent transaction, the other feeder).

- portal room → conversation (external_id = room id); a ghost → the chat's contact (identity
  keyed by the room for direct chats, so LID and phone ghosts of one person stay one contact);
- ghost messages (text, image, video, audio, voice, file, sticker, location) → inbound
  messages, media downloaded before ingest; the user's own ghost (`fi.mau.receiver`) → "out";
- `m.replace` → edit, `m.reaction` → reaction, `m.room.redaction` → deleted for everyone,
  `m.in_reply_to` → reply;
- the bridge bot's `com.beeper.message_send_status`, its "not bridged" notices and receipts →
  forward-only statuses of our outbound messages;
- `m.typing` naming the chat's ghost → a `typing` presence event for the managers (not stored);
- management-room events → the login dialogue (connect.py).
"""

import logging
import re
from datetime import UTC, datetime

from django.core.cache import cache

from communications import events as realtime
from communications.models import Channel, ContactIdentity, Conversation, Message
from communications.services import edits
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
    ingest_messages,
)
from communications.services.receipts import apply_receipt
from communications.services.send import update_status_by_external_id
from crm.models import Contact

from ..media import MediaFetchError
from .client import MatrixClient, MatrixError
from .media import download
from .models import MatrixConnection, MatrixRoom
from .numbers import room_channel
from .rooms import join_and_remember, remember_room, room_for
from .schema import event_shape_error
from .settings_cache import MatrixConfig, get_config

logger = logging.getLogger(__name__)

NOT_BRIDGED_PREFIX = "\u26a0\ufe0f Your message was not bridged"
PROFILE_KEY = "switchboard:matrix:profile:{}"
PROFILE_TTL = 300
TYPING_STATE_KEY = "switchboard:matrix:typing:{}"
TYPING_STATE_TTL = 120

KIND_BY_MSGTYPE = {
    "m.text": Message.Kind.TEXT,
    "m.notice": Message.Kind.TEXT,
    "m.emote": Message.Kind.TEXT,
    "m.image": Message.Kind.IMAGE,
    "m.video": Message.Kind.VIDEO,
    "m.audio": Message.Kind.AUDIO,
    "m.file": Message.Kind.FILE,
    "m.location": Message.Kind.LOCATION,
}
STATUS_FAILURES = ("FAIL_PERMANENT", "FAIL_RETRIABLE")


def handle_events(events: list[dict], *, source: str) -> int:
    """Map a batch of room events (each carrying its `room_id`); returns how many were used.

    MatrixUnavailable propagates (the caller retries the whole batch: what was stored is
    skipped then); a MatrixError skips only its event."""
    config = get_config()
    events = [event for event in events if _well_shaped(event)]
    batch = _Batch(events)
    used = 0
    for event in events:
        batchable = _is_new_message(event)
        if not batchable:
            used += batch.flush()  # this event may refer to the messages before it
        try:
            used += bool(
                handle_event(
                    event, config=config, source=source, batch=batch if batchable else None
                )
            )
        except MatrixError:
            logger.exception("matrix event %s skipped", event.get("event_id"))
        if not batchable:
            batch.forget_rooms()  # it may have learnt or changed a room
    return used + batch.flush()


def _well_shaped(event) -> bool:
    problem = event_shape_error(event)
    if problem:
        # The appservice refuses such a transaction whole; sync and backfill skip the event.
        logger.warning("matrix event of an unexpected shape skipped: %s", problem)
    return not problem


def _is_new_message(event: dict) -> bool:
    """A message event that is not an edit: stored by the batch (if it is one to store)."""
    if event.get("type") not in ("m.room.message", "m.sticker"):
        return False
    relates = (event.get("content") or {}).get("m.relates_to") or {}
    return relates.get("rel_type") != "m.replace"


class _Batch:
    """The new messages of one `handle_events` call, gathered per channel until `flush`, and
    what the batch read once for all of them: the rooms named and the event ids already
    stored."""

    def __init__(self, events: list[dict]):
        self.pending: dict[int, tuple[Channel, list[InboundMessage]]] = {}
        message_events = [event for event in events if _is_new_message(event)]
        room_ids = {event.get("room_id") for event in message_events} - {"", None}
        self.rooms: dict[str, MatrixRoom] = {}
        if room_ids:
            self.rooms = {
                room.room_id: room
                for room in MatrixRoom.objects.select_related("connection", "channel").filter(
                    room_id__in=room_ids
                )
            }
        channel_ids = {room.channel_id for room in self.rooms.values() if room.channel_id}
        event_ids = {event.get("event_id") for event in message_events} - {"", None}
        self.known: set[str] = set()
        if channel_ids and event_ids:
            self.known = set(
                Message.objects.filter(
                    channel_id__in=channel_ids, external_id__in=event_ids
                ).values_list("external_id", flat=True)
            )

    def room(self, room_id: str) -> MatrixRoom | None:
        if room_id not in self.rooms:
            room = room_for(room_id)
            if room is None:
                return None
            self.rooms[room_id] = room
        return self.rooms[room_id]

    def forget_rooms(self) -> None:
        self.rooms = {}

    def add(self, channel: Channel, item: InboundMessage) -> None:
        self.pending.setdefault(channel.pk, (channel, []))[1].append(item)
        if item.external_id:
            self.known.add(item.external_id)

    def flush(self) -> int:
        """Store what gathered: one ingest batch per channel; returns how many were new."""
        created = 0
        pending, self.pending = self.pending, {}
        for channel, items in pending.values():
            _adopt_known_contacts(channel, [item.sender for item in items])
            created += sum(result.created for result in ingest_messages(channel, items))
        return created


def handle_event(
    event: dict, *, config: MatrixConfig, source: str = "", batch: _Batch | None = None
) -> bool:
    """One event. With a `batch` a new message is added to it (stored at its flush, and
    counted then) instead of being stored at once."""
    room_id = event.get("room_id", "")
    event_type = event.get("type", "")
    if event_type == "m.room.member":
        return _on_member(event, config)
    room = batch.room(room_id) if batch is not None else room_for(room_id)
    if room is None:
        return False
    if room.kind == MatrixRoom.Kind.MANAGEMENT:
        from .connect import handle_management_event

        if batch is not None:
            batch.forget_rooms()  # the login dialogue may change the connection they hold
        return handle_management_event(room.connection, event, config=config)
    if room.kind != MatrixRoom.Kind.PORTAL:
        if event_type in ("m.bridge", "uk.half-shot.bridge"):
            remember_room(room.connection, room_id, [event])
        return False
    sender = event.get("sender", "")
    if sender == config.bridge_bot:
        return _on_bridge_bot(room, event)
    if not _is_ghost(sender, config):
        return False  # our managers' own sends are stored by the send path already
    if event_type == "m.reaction":
        relates = event.get("content", {}).get("m.relates_to", {})
        return edits.apply_reaction(
            channel_id=room_channel(room).pk,
            external_id=relates.get("event_id", ""),
            sender=sender,
            key=relates.get("key", ""),
            reaction_id=event.get("event_id", ""),
        )
    if event_type == "m.room.redaction":
        target = event.get("redacts") or event.get("content", {}).get("redacts", "")
        return edits.apply_redaction(
            channel_id=room_channel(room).pk,
            external_id=target,
            redaction_id=event.get("event_id", ""),
        )
    if event_type in ("m.room.message", "m.sticker"):
        return _on_message(room, event, config, historical=source == "backfill", batch=batch)
    return False


# -- members and profiles -------------------------------------------------------------------
def _on_member(event: dict, config: MatrixConfig) -> bool:
    target = event.get("state_key", "")
    membership = event.get("content", {}).get("membership")
    if membership == "invite":
        connection = MatrixConnection.objects.filter(matrix_user_id=target).first()
        if connection is not None and connection.access_token:
            return join_and_remember(connection, event["room_id"]) is not None
        return False
    if membership == "join" and _is_ghost(target, config):
        # A ghost's profile changed (a LID contact's phone appears in its display name…).
        cache.delete(PROFILE_KEY.format(target))
        room = room_for(event.get("room_id", ""), allow_lookup=False)
        if room is not None and room.kind == MatrixRoom.Kind.PORTAL and not room.is_group:
            if _ghost_phone(target, config) == room.receiver:
                return False
            profile = _profile(room, target, config, cached=False)
            profile.setdefault("displayname", event.get("content", {}).get("displayname") or "")
            sender = _sender_for(room, target, config, profile=profile)
            _learn_contact_details(room, sender, config)
        return False
    return False


def _is_ghost(user_id: str, config: MatrixConfig) -> bool:
    return user_id.startswith("@whatsapp_") and user_id.endswith(":" + config.server_name)


def _ghost_local(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0][len("whatsapp_") :]


def _ghost_phone(user_id: str, config: MatrixConfig) -> str:
    local = _ghost_local(user_id)
    return local if local.isdigit() else ""


def _profile(room: MatrixRoom, user_id: str, config: MatrixConfig, *, cached=True) -> dict:
    key = PROFILE_KEY.format(user_id)
    profile = cache.get(key) if cached else None
    if profile is None:
        client = MatrixClient.for_connection(room.connection, config)
        try:
            profile = client.request("GET", f"/_matrix/client/v3/profile/{user_id}")
        except MatrixError:
            profile = {}
        if cached:
            cache.set(key, profile, PROFILE_TTL)
    return profile


PHONE_IN_NAME = re.compile(r"\+(\d{6,15})")


def _phone_in_profile(profile: dict) -> bool:
    identifiers = profile.get("com.beeper.bridge.identifiers") or []
    return any(str(i).startswith("tel:+") for i in identifiers) or bool(
        PHONE_IN_NAME.search(profile.get("displayname") or "")
    )


def _sender_for(
    room: MatrixRoom, ghost: str, config: MatrixConfig, *, profile: dict | None = None
) -> InboundSender:
    """The chat's contact; for direct chats keyed by the room (see models.py)."""
    phone = _ghost_phone(ghost, config)
    if profile is None:
        profile = _profile(room, ghost, config)
        if not phone and not _phone_in_profile(profile):
            # A LID contact: the number may have been learnt since we cached the profile.
            profile = _profile(room, ghost, config, cached=False)
    displayname = profile.get("displayname") or ""
    if not phone:
        for identifier in profile.get("com.beeper.bridge.identifiers") or []:
            if isinstance(identifier, str) and identifier.startswith("tel:+"):
                phone = identifier[len("tel:+") :]
                break
    if not phone:
        match = PHONE_IN_NAME.search(displayname)
        phone = match.group(1) if match else ""
    name = re.sub(r"\s*\(WA\)$", "", displayname)
    name = re.sub(r"\s*\(\+\d+\)$", "", name).strip()
    if name == f"+{phone}":
        name = ""
    if room.is_group:
        return InboundSender(external_id=room.room_id, name=room.name)
    return InboundSender(
        external_id=room.room_id,
        name=name,
        phone=f"+{phone}" if phone else "",
        username=ghost,
    )


def _learn_contact_details(room: MatrixRoom, sender: InboundSender, config: MatrixConfig) -> None:
    """Fill what we did not know (a LID contact's phone) without splitting the contact."""
    channel = room_channel(room)
    identity = (
        ContactIdentity.objects.select_related("contact")
        .filter(channel=channel, external_id=sender.external_id)
        .first()
    )
    if identity is None:
        return
    contact = identity.contact
    updates = {
        name: getattr(sender, name)
        for name in ("name", "phone")
        if getattr(sender, name) and not getattr(contact, name)
    }
    if updates:
        Contact.objects.filter(pk=contact.pk).update(**updates)


def _adopt_known_contacts(channel: Channel, senders: list[InboundSender]) -> None:
    """New chats with a phone we already know (the same person under a new JID): same contact.
    At most three statements for any number of senders. (Group chats' senders carry no phone.)"""
    by_chat = {sender.external_id: sender for sender in senders if sender.phone}
    if not by_chat:
        return
    existing = set(
        ContactIdentity.objects.filter(channel=channel, external_id__in=by_chat).values_list(
            "external_id", flat=True
        )
    )
    new = {chat: sender for chat, sender in by_chat.items() if chat not in existing}
    if not new:
        return
    known: dict[str, int] = {}
    for contact_id, phone in (
        Contact.objects.filter(
            phone__in={sender.phone for sender in new.values()}, identities__channel=channel
        )
        .order_by("pk")
        .values_list("pk", "phone")
    ):
        known.setdefault(phone, contact_id)
    adopted = [
        ContactIdentity(
            channel=channel,
            external_id=chat,
            contact_id=known[sender.phone],
            display_name=sender.name,
            username=sender.username,
        )
        for chat, sender in new.items()
        if sender.phone in known
    ]
    if adopted:
        ContactIdentity.objects.bulk_create(adopted, ignore_conflicts=True)


# -- messages -------------------------------------------------------------------------------
def _on_message(
    room: MatrixRoom,
    event: dict,
    config: MatrixConfig,
    *,
    historical: bool = False,
    batch: _Batch | None = None,
) -> bool:
    content = event.get("content") or {}
    relates = content.get("m.relates_to") or {}
    channel = room_channel(room)
    if batch is not None and event.get("event_id") in batch.known:
        return False  # stored already: nothing to download or store again
    if relates.get("rel_type") == "m.replace":
        new = content.get("m.new_content") or {}
        return edits.apply_edit(
            channel_id=channel.pk,
            external_id=relates.get("event_id", ""),
            content=new.get("body", ""),
            edit_id=event.get("event_id", ""),
            edited_at=_timestamp(event),
        )
    sender = event.get("sender", "")
    outbound = room.receiver and _ghost_phone(sender, config) == room.receiver
    contact_ghost = sender if not outbound else ""
    inbound_sender = (
        _sender_for(room, contact_ghost, config)
        if contact_ghost
        else InboundSender(external_id=room.room_id, name="" if not room.is_group else room.name)
    )
    if event.get("type") == "m.sticker":
        kind = Message.Kind.STICKER
    else:
        kind = KIND_BY_MSGTYPE.get(content.get("msgtype", ""), Message.Kind.TEXT)
    text, attachments, metadata = _content_of(room, content, kind, config)
    metadata.update(matrix_sender=sender, matrix_room=room.room_id)
    if room.is_group and contact_ghost:
        metadata["sender_name"] = _profile(room, sender, config).get("displayname", "")
    reply_to = (relates.get("m.in_reply_to") or {}).get("event_id")
    item = InboundMessage(
        sender=inbound_sender,
        content=text,
        kind=kind,
        external_id=event.get("event_id"),
        conversation_external_id=room.room_id,
        subject=room.name if room.is_group else "",
        timestamp=_timestamp(event),
        attachments=attachments,
        reply_to_external_id=reply_to,
        direction=Message.Direction.OUTBOUND if outbound else Message.Direction.INBOUND,
        metadata=metadata,
        historical=historical,
    )
    if batch is not None:
        batch.add(channel, item)
        return False  # counted when the batch is stored
    _adopt_known_contacts(channel, [inbound_sender])
    return ingest_message(channel, item).created


def _content_of(
    room: MatrixRoom, content: dict, kind: str, config: MatrixConfig
) -> tuple[str, tuple[InboundAttachment, ...], dict]:
    metadata: dict = {}
    body = content.get("body", "") or ""
    if kind == Message.Kind.LOCATION:
        metadata["geo_uri"] = content.get("geo_uri", "")
        return body, (), metadata
    if kind not in (
        Message.Kind.IMAGE,
        Message.Kind.VIDEO,
        Message.Kind.AUDIO,
        Message.Kind.FILE,
        Message.Kind.STICKER,
    ):
        return body, (), metadata
    info = content.get("info") or {}
    filename = content.get("filename") or body or "attachment"
    caption = body if content.get("filename") and body != content.get("filename") else ""
    if "org.matrix.msc3245.voice" in content:
        metadata["voice"] = True
    mxc = content.get("url", "")
    data, download_error = None, ""
    if mxc:
        # Stored before the message is announced: the ingest path saves these bytes. A failed
        # download keeps the message, with a placeholder that is retried.
        try:
            data = download(room.connection, mxc, config)
        except MediaFetchError as exc:
            download_error = exc.reason
    else:
        metadata["media_unavailable"] = "encrypted or missing media"
    attachment = InboundAttachment(
        mime_type=(info.get("mimetype") or "application/octet-stream").split(";")[0].strip(),
        filename=filename[:255],
        data=data,
        provider_ref=mxc,
        download_error=download_error,
        width=info.get("w"),
        height=info.get("h"),
        duration_ms=info.get("duration"),
    )
    return caption, (attachment,), metadata


def _timestamp(event: dict) -> datetime | None:
    ts = event.get("origin_server_ts")
    try:
        return datetime.fromtimestamp(ts / 1000, tz=UTC) if ts else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None  # a timestamp no calendar holds: the ingest path uses "now"


# -- statuses -------------------------------------------------------------------------------
def _on_bridge_bot(room: MatrixRoom, event: dict) -> bool:
    content = event.get("content") or {}
    event_type = event.get("type")
    if event_type == "com.beeper.message_send_status":
        target = (content.get("m.relates_to") or {}).get("event_id", "")
        status = content.get("status")
        if status in STATUS_FAILURES:
            reason = content.get("message") or content.get("error") or content.get("reason") or ""
            label = "WhatsApp did not accept the message"
            if status == "FAIL_RETRIABLE":
                label += " (retriable)"
            return apply_status(room, target, Message.Status.FAILED, f"{label}: {reason}")
        if status == "SUCCESS":
            return apply_status(room, target, Message.Status.SENT)
        return False
    if event_type == "m.room.message" and (content.get("body") or "").startswith(
        NOT_BRIDGED_PREFIX
    ):
        target = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        if target:
            return apply_status(room, target, Message.Status.FAILED, content["body"])
    return False


def handle_receipts(room_id: str, content: dict, config: MatrixConfig | None = None) -> int:
    """`m.receipt` content: the bridge bot's read = delivered to WhatsApp, a ghost's = read.

    A receipt names the newest event read and covers every earlier one (the homeserver keeps
    only the latest per user and room): applied to the whole conversation up to that event."""
    config = config or get_config()
    room = None
    changed = 0
    for event_id, kinds in (content or {}).items():
        for receipt_type in ("m.read", "m.read.private"):
            for reader in (kinds.get(receipt_type) or {}).keys():
                if reader == config.bridge_bot:
                    status = Message.Status.DELIVERED
                elif _is_ghost(reader, config):
                    status = Message.Status.READ
                else:
                    continue
                room = room or room_for(room_id, allow_lookup=False)
                if room is None or room.kind != MatrixRoom.Kind.PORTAL:
                    return changed
                if status == Message.Status.READ and _ghost_phone(reader, config) == room.receiver:
                    continue  # the manager read it on their phone
                changed += apply_receipt(
                    channel_id=room_channel(room).pk,
                    conversation_external_id=room.room_id,
                    external_id=event_id,
                    status=status,
                )
    return changed


def handle_ephemeral(events: list[dict]) -> int:
    config = get_config()
    used = 0
    for event in events:
        room_id, content = event.get("room_id", ""), event.get("content") or {}
        if event.get("type") == "m.receipt":
            used += handle_receipts(room_id, content, config)
        elif event.get("type") == "m.typing":
            used += handle_typing(room_id, content.get("user_ids") or [], config)
    return used


def handle_typing(room_id: str, user_ids: list[str], config: MatrixConfig | None = None) -> bool:
    """`m.typing` (the full list of who types now) → the customer's typing, on or off.

    Only the chat's ghosts count: not our manager's Matrix user, not the bridge bot, not the
    manager's own WhatsApp ghost. Both feeders (appservice push and sync) deliver the same
    notice, and every typing change of our own managers arrives here too: only a change of the
    customer's state is broadcast (the last one is kept in the cache).
    """
    config = config or get_config()
    room = room_for(room_id, allow_lookup=False)
    if room is None or room.kind != MatrixRoom.Kind.PORTAL:
        return False
    customers = [
        user_id
        for user_id in user_ids
        if _is_ghost(user_id, config)
        and user_id not in (config.bridge_bot, room.connection.matrix_user_id)
        and not (room.receiver and _ghost_phone(user_id, config) == room.receiver)
    ]
    typing = bool(customers)
    key = TYPING_STATE_KEY.format(room_id)
    if bool(cache.get(key)) == typing:
        return False
    conversation = (
        Conversation.objects.select_related("contact")
        .filter(channel=room_channel(room), external_id=room_id)
        .first()
    )
    if conversation is None:
        return False  # no message yet: nothing on the page to show it against
    cache.set(key, typing, TYPING_STATE_TTL)
    name = ""
    if typing and room.is_group:
        name = _profile(room, customers[0], config).get("displayname") or ""
    if not name and conversation.contact_id:
        name = conversation.contact.name or conversation.contact.phone
    realtime.broadcast_ephemeral(
        realtime.TYPING,
        channel_id=conversation.channel_id,
        payload={
            "conversation_id": conversation.pk,
            "user_id": None,
            "user_name": name or "The customer",
            "customer": True,
            "typing": typing,
        },
    )
    return True


def apply_status(room: MatrixRoom, event_id: str, status: str, reason: str = "") -> bool:
    """One event's status (the bridge's message_send_status), forward-only, in the room's
    channel; a status that overtakes the send's answer waits for the id (send path)."""
    if not event_id:
        return False
    return update_status_by_external_id(room_channel(room).pk, event_id, status, reason)
