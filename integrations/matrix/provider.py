"""WhatsApp through Matrix: an outbound message becomes an event in the chat's portal room.

Who sends: each connected number is its own channel (numbers.py), and a portal belongs to the
number the bridge made it for (only that manager's Matrix user is in it), so the message is
sent as that manager's Matrix user, whoever wrote it in the inbox — and only while that number
is still the one connected: a disconnected number's channel is read-only. The transaction id is `switchboard-<message id>`
(plus a digest of the refused event after a bridge refusal), so a retried task — even one
whose worker died after the homeserver took the event — gets the same event back instead of
a second one.
"""

import hashlib
from urllib.parse import quote

from communications.models import Channel, Conversation, Message
from communications.services.send import update_message_status

from ..base import PermanentDeliveryError, ReplyOptions, SendResult, TemporaryDeliveryError
from .client import MatrixClient, MatrixError, MatrixUnavailable
from .models import MatrixConnection, MatrixRoom, WhatsAppNumber
from .numbers import pretty_phone
from .rooms import room_for
from .settings_cache import get_config

TYPING_TIMEOUT_MS = 5000


def msgtype_for(mime_type: str) -> str:
    major = (mime_type or "").split("/", 1)[0]
    return {"image": "m.image", "video": "m.video", "audio": "m.audio"}.get(major, "m.file")


def transaction_id(message: Message) -> str:
    """Stable across retries of one send. A pending message that already has an event id is
    a staff retry after the bridge refused that event: it needs a new transaction id, or the
    homeserver would answer with the refused event again."""
    txn = f"switchboard-{message.pk}"
    if message.external_id:
        txn += "-after-" + hashlib.sha256(message.external_id.encode()).hexdigest()[:16]
    return txn


class MatrixProvider:
    kind = Channel.Kind.WHATSAPP
    # The transaction id makes the homeserver answer a resend with the first event.
    resend_is_safe = True

    def __init__(self, channel: Channel):
        self.channel = channel

    def send(self, message: Message) -> SendResult:
        config = get_config()
        if not config.configured:
            raise PermanentDeliveryError("Matrix is not configured (admin → Matrix settings)")
        room_id = message.conversation.external_id
        try:
            room = room_for(room_id)
        except MatrixUnavailable as exc:
            raise TemporaryDeliveryError(str(exc)) from exc
        if room is None:
            raise PermanentDeliveryError(f"no connected manager is in the portal room {room_id}")
        connection = room.connection
        unavailable = self.reply_unavailable()
        if unavailable:
            raise PermanentDeliveryError(unavailable)
        if room.channel_id not in (None, self.channel.pk):
            raise PermanentDeliveryError(f"the portal room {room_id} belongs to another number")
        client = MatrixClient.for_connection(connection, config)
        txn = transaction_id(message)
        try:
            event_ids = []
            attachments = list(message.attachments.all())
            for index, attachment in enumerate(attachments):
                content = self._media_content(client, attachment)
                if index == 0 and message.content and len(attachments) == 1:
                    content["body"], content["filename"] = message.content, attachment.filename
                event_ids.append(
                    client.send_event(room_id, "m.room.message", content, f"{txn}-a{index}")
                )
            if message.content and len(attachments) != 1:
                content = {"msgtype": "m.text", "body": message.content}
                reply = message.reply_to.external_id if message.reply_to_id else None
                if reply:
                    content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply}}
                event_ids.append(client.send_event(room_id, "m.room.message", content, txn))
        except MatrixUnavailable as exc:
            raise TemporaryDeliveryError(str(exc)) from exc
        except MatrixError as exc:
            if exc.status in (401,) or exc.errcode == "M_UNKNOWN_TOKEN":
                raise PermanentDeliveryError(
                    f"the Matrix login of {connection.user} is no longer valid: reconnect it"
                ) from exc
            raise PermanentDeliveryError(f"the homeserver refused the message: {exc}") from exc
        event_id = event_ids[-1]
        if len(event_ids) > 1:
            message.metadata["matrix_events"] = event_ids
            Message.objects.filter(pk=message.pk).update(metadata=message.metadata)
        # Store the id now (the send path then applies statuses the bridge sent before it).
        update_message_status(message.pk, Message.Status.SENT, external_id=event_id)
        return SendResult(external_id=event_id)

    def reply_options(self, conversation=None) -> ReplyOptions:
        reason = self.reply_unavailable()
        return ReplyOptions("notes", reason) if reason else ReplyOptions()

    def reply_unavailable(self) -> str:
        """Why this number's chats cannot be answered now ("" when they can): its history
        stays readable after a logout or a switch to another number."""
        number = (
            WhatsAppNumber.objects.select_related("connection__user")
            .filter(channel_id=self.channel.pk)
            .first()
        )
        if number is None:
            return "this WhatsApp channel has no connected number"
        if number.is_connected:
            return ""
        connection = number.connection
        state = connection.get_state_display().lower()
        if connection.state == MatrixConnection.State.CONNECTED:
            state = f"now connected as +{connection.phone} instead"
        return (
            f"WhatsApp {pretty_phone(number.phone)} of {connection.user} is {state}: its chats "
            "are read-only until that number is connected again on the Connect WhatsApp page"
        )

    def send_typing(self, conversation: Conversation, user) -> None:
        """The manager types: the portal's Matrix user (the login's owner) types for 5 s."""
        config = get_config()
        if not config.configured:
            return
        room = room_for(conversation.external_id, allow_lookup=False)
        if room is None or room.kind != MatrixRoom.Kind.PORTAL:
            return
        connection = room.connection
        if connection.state != MatrixConnection.State.CONNECTED or not connection.access_token:
            return
        sender = connection.matrix_user_id
        MatrixClient.for_connection(connection, config).request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}/typing/"
            f"{quote(sender, safe='')}",
            json={"typing": True, "timeout": TYPING_TIMEOUT_MS},
            timeout=5,
        )

    def fetch_profile(self, identity):
        """The bridged contact's name and picture (R12), for the core's background refresh."""
        from .profiles import fetch_profile

        return fetch_profile(identity)

    @staticmethod
    def _media_content(client: MatrixClient, attachment) -> dict:
        attachment.file.open("rb")
        try:
            data = attachment.file.read()
        finally:
            attachment.file.close()
        mxc = client.upload(data, attachment.mime_type, attachment.filename or "file")
        info = {"mimetype": attachment.mime_type, "size": len(data)}
        for key, value in (("w", attachment.width), ("h", attachment.height)):
            if value:
                info[key] = value
        if attachment.duration_ms:
            info["duration"] = attachment.duration_ms
        return {
            "msgtype": msgtype_for(attachment.mime_type),
            "body": attachment.filename or "file",
            "url": mxc,
            "info": info,
        }
