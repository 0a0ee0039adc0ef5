"""Outbound Telegram messages, and the provider's optional hooks (getMe, participant info).

Channel secrets: `{"bot_token": "<from @BotFather>", "webhook_secret": "<setup.py makes it>"}`.
Text is sent as plain text (no `parse_mode`): what the manager typed arrives as typed, with
no Markdown to escape or to break. An attachment is uploaded from our storage (multipart)
with the text as its caption.
"""

import mimetypes

import requests

from communications.models import Channel, ContactIdentity, Message
from communications.providers import ConfigProblem, Profile, SendResult

from ..base import PermanentDeliveryError, TemporaryDeliveryError
from .api import BotApi, BotApiError, delivery_error
from .parse import message_external_id

MAX_TEXT = 4096  # sendMessage, after entities parsing
MAX_CAPTION = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # what bots may upload
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # sendPhoto; larger pictures go as documents
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
AUDIO_TYPES = {"audio/mpeg", "audio/mp4", "audio/x-m4a", "audio/m4a"}


def upload_method(mime_type: str, size: int) -> tuple[str, str]:
    """(Bot API method, its file field) for an attachment."""
    if mime_type in PHOTO_TYPES and size <= MAX_PHOTO_BYTES:
        return "sendPhoto", "photo"
    if mime_type == "video/mp4":
        return "sendVideo", "video"
    if mime_type == "audio/ogg":  # OGG/OPUS: a voice message
        return "sendVoice", "voice"
    if mime_type in AUDIO_TYPES:
        return "sendAudio", "audio"
    return "sendDocument", "document"


class TelegramProvider:
    kind = Channel.Kind.TELEGRAM
    # The Bot API has no idempotency key: a second sendMessage is a second message.
    resend_is_safe = False

    def __init__(self, channel: Channel):
        self.channel = channel

    def configuration_problems(self) -> list[ConfigProblem]:
        secrets = self.channel.secrets or {}
        problems = []
        if not secrets.get("bot_token"):
            problems.append(ConfigProblem("Bot token is not set: nothing can be sent"))
        if not secrets.get("webhook_secret"):
            problems.append(
                ConfigProblem(
                    "The webhook is not set up: Telegram's updates are refused until an admin "
                    "runs “Set up the webhook” (or manage.py telegram_set_webhook)",
                    blocks_replies=False,
                )
            )
        return problems

    # --- send ---------------------------------------------------------------------------------
    def send(self, message: Message) -> SendResult:
        chat_id = message.conversation.external_id
        params: dict = {"chat_id": chat_id}
        reply_to = self._reply_to(message, chat_id)
        if reply_to is not None:
            params["reply_parameters"] = {
                "message_id": reply_to,
                "allow_sending_without_reply": True,
            }
        attachments = message.loaded_attachments()
        try:
            if len(attachments) > 1:
                raise PermanentDeliveryError("Telegram takes one attachment per message here")
            if attachments:
                result = self._send_file(attachments[0], message.content, params)
            else:
                if len(message.content) > MAX_TEXT:
                    raise PermanentDeliveryError(
                        f"longer than the {MAX_TEXT} characters Telegram takes in one message"
                    )
                result = BotApi(self.channel).call(
                    "sendMessage", {**params, "text": message.content}
                )
        except (BotApiError, requests.RequestException) as exc:
            raise delivery_error(exc) from exc
        try:
            return SendResult(external_id=message_external_id(chat_id, result["message_id"]))
        except (KeyError, TypeError):
            return SendResult(external_id=None)  # accepted all the same: never resend

    def _reply_to(self, message: Message, chat_id: str) -> int | None:
        if not message.reply_to_id:
            return None
        external_id = (
            Message.objects.filter(pk=message.reply_to_id)
            .values_list("external_id", flat=True)
            .first()
        )
        prefix = f"{chat_id}:"
        if external_id and external_id.startswith(prefix) and external_id[len(prefix) :].isdigit():
            return int(external_id[len(prefix) :])
        return None

    def _send_file(self, attachment, caption: str, params: dict):
        if attachment.size > MAX_UPLOAD_BYTES:
            raise PermanentDeliveryError(
                f"{attachment.filename} is larger than the 50 MB Telegram bots may upload"
            )
        if len(caption) > MAX_CAPTION:
            raise PermanentDeliveryError(
                f"a caption longer than the {MAX_CAPTION} characters Telegram takes; send the "
                "text as its own message"
            )
        method, field = upload_method(attachment.mime_type, attachment.size)
        if caption:
            params = {**params, "caption": caption}
        with attachment.file.open("rb") as handle:
            files = {field: (attachment.filename or "file", handle, attachment.mime_type)}
            return BotApi(self.channel).call(method, params, files=files)

    # --- optional hooks -----------------------------------------------------------------------
    def check_connection(self) -> str:
        try:
            me = BotApi(self.channel).call("getMe")
        except (BotApiError, requests.RequestException) as exc:
            raise delivery_error(exc) from exc
        username = (me or {}).get("username") or (me or {}).get("first_name") or "a bot"
        return f"Connected as @{username}"

    def register_webhook(self, public_url: str) -> str:
        from .setup import set_webhook

        return set_webhook(self.channel, public_url)

    def fetch_profile(self, identity: ContactIdentity) -> Profile | None:
        """getChat for the name and username; the newest profile photo (getUserProfilePhotos,
        or a group's chat photo) through getFile and the download."""
        try:
            api = BotApi(self.channel)
            chat_id = int(identity.external_id)
        except (PermanentDeliveryError, ValueError):
            return None  # no bot token yet, or not a Telegram id
        try:
            chat = api.call("getChat", {"chat_id": chat_id}) or {}
            name = chat.get("title") or " ".join(
                p for p in (chat.get("first_name"), chat.get("last_name")) if p
            )
            file_id = self._photo_file_id(api, chat_id, chat)
            avatar, content_type = None, ""
            if file_id:
                avatar, file_path = api.file_bytes(file_id)
                content_type = mimetypes.guess_type(file_path)[0] or "image/jpeg"
        except BotApiError as exc:
            if exc.temporary:
                raise TemporaryDeliveryError(exc.reason, retry_after=exc.retry_after) from exc
            return None  # chat not found, the bot was blocked: nothing to say
        except requests.RequestException as exc:
            raise TemporaryDeliveryError(f"Telegram unreachable: {exc.__class__.__name__}") from exc
        return Profile(
            name=name,
            username=chat.get("username") or "",
            avatar=avatar,
            avatar_content_type=content_type,
        )

    @staticmethod
    def _photo_file_id(api: BotApi, chat_id: int, chat: dict) -> str:
        if chat_id > 0:  # a user: their newest profile photo, at most 640 px
            photos = api.call("getUserProfilePhotos", {"user_id": chat_id, "limit": 1}) or {}
            sizes = (photos.get("photos") or [[]])[0]
            if sizes:
                fitting = [s for s in sizes if s.get("width", 0) <= 640] or sizes
                return max(fitting, key=lambda s: s.get("width", 0)).get("file_id", "")
            return ""
        return (chat.get("photo") or {}).get("big_file_id", "")
