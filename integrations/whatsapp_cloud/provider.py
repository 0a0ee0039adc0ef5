"""Outbound WhatsApp Cloud API messages: POSTs to `{base}/{phone_number_id}/messages`.

Channel config: `{"phone_number_id": "...", "business_account_id": "...",
"graph_api_base": "https://graph.facebook.com/v21.0"}`;
secrets: `{"access_token": ..., "app_secret": ..., "verify_token": ...}`.

What one stored message becomes:
- text → `{"type": "text"}`; a template (metadata `whatsapp_template`, from the reply box
  outside the 24-hour window) → `{"type": "template"}`, the only kind allowed outside it;
- each attachment → `{"type": "image"|"video"|"audio"|"document"}` (WhatsApp carries one
  media per message). **By link** when the attachment names a public http(s) URL
  (`provider_ref`, e.g. given to the API channel by link): Meta fetches it itself. **By id**
  otherwise: the stored file is uploaded to `{base}/{phone_number_id}/media` (multipart) and
  the returned media id is sent. The text rides as the caption of the first image, video or
  document; with audio (no captions) it follows as its own text message.
The Cloud API has no idempotency key, so the wamid of every part already accepted is kept in
`metadata["whatsapp_parts"]`: a retry after a later part failed does not send them again.
"""

from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone

from communications.models import Attachment, Channel, Conversation, Message

from ..base import (
    ConfigProblem,
    PermanentDeliveryError,
    PreparedTemplate,
    ReplyOptions,
    SendResult,
    TemporaryDeliveryError,
    request_failure,
)
from .parse import OUTSIDE_WINDOW, error_reason

DEFAULT_GRAPH_API_BASE = "https://graph.facebook.com/v21.0"
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
# Graph error codes worth retrying whatever the HTTP status: rate and throughput limits
# (130429 throughput, 131056 pair rate limit, 4 / 80007 app and account limits) and
# "service temporarily unavailable" (131016, 133004).
TEMPORARY_CODES = {4, 80007, 130429, 131056, 131016, 133004}
# Media types WhatsApp plays as such (Meta's supported media types); anything else goes as a
# document, which keeps its file name.
MEDIA_KIND_BY_MIME = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
}
WINDOW_CLOSED = (
    "the customer last wrote more than 24 hours ago (WhatsApp's customer-service window is "
    "closed): only an approved template can be sent"
)


def window_is_open(conversation: Conversation) -> bool:
    last_inbound = conversation.last_inbound_at
    return last_inbound is not None and timezone.now() - last_inbound <= CUSTOMER_SERVICE_WINDOW


def media_kind(mime_type: str) -> str:
    return MEDIA_KIND_BY_MIME.get((mime_type or "").split(";")[0].strip().lower(), "document")


def graph_base(channel: Channel) -> str:
    return (channel.config.get("graph_api_base") or DEFAULT_GRAPH_API_BASE).rstrip("/")


def auth_headers(channel: Channel) -> dict:
    token = channel.secrets.get("access_token", "")
    if not token:
        raise PermanentDeliveryError(
            "this WhatsApp channel has no access token: an admin sets it in admin → Channels"
        )
    return {"Authorization": f"Bearer {token}"}


class CloudApiProvider:
    kind = Channel.Kind.WHATSAPP
    # The Cloud API has no idempotency key for /messages: a second POST is a second message.
    resend_is_safe = False

    def __init__(self, channel: Channel):
        self.channel = channel

    def configuration_problems(self) -> list[ConfigProblem]:
        config, secrets = self.channel.config or {}, self.channel.secrets or {}
        problems = []
        if not config.get("phone_number_id"):
            problems.append(ConfigProblem("Phone number ID is not set: nothing can be sent"))
        if not secrets.get("access_token"):
            problems.append(ConfigProblem("Access token is not set: nothing can be sent"))
        if not secrets.get("app_secret"):
            problems.append(
                ConfigProblem("App secret is not set: Meta's webhooks are refused", False)
            )
        if not config.get("business_account_id"):
            problems.append(
                ConfigProblem(
                    "WhatsApp Business Account ID is not set: templates cannot be synced, so "
                    "nothing can be sent once a customer's 24-hour window closes",
                    False,
                )
            )
        if not secrets.get("verify_token"):
            problems.append(
                ConfigProblem("Webhook verify token is not set: Meta cannot subscribe", False)
            )
        return problems

    # --- the reply box ------------------------------------------------------------------
    def reply_options(self, conversation: Conversation | None) -> ReplyOptions:
        if conversation is None or window_is_open(conversation):
            return ReplyOptions()
        return ReplyOptions("templates", WINDOW_CLOSED)

    def message_templates(self, conversation: Conversation) -> list[dict]:
        from .templates import approved_templates

        return approved_templates(self.channel)

    def prepare_template(self, conversation: Conversation, template: dict) -> PreparedTemplate:
        from .templates import prepare_template

        return prepare_template(conversation, template)

    # --- sending --------------------------------------------------------------------------
    def send(self, message: Message) -> SendResult:
        conversation = message.conversation
        template = (message.metadata or {}).get("whatsapp_template")
        if not template and not window_is_open(conversation):
            raise PermanentDeliveryError(OUTSIDE_WINDOW)
        phone_number_id = self.channel.config.get("phone_number_id", "")
        if not phone_number_id:
            raise PermanentDeliveryError(
                "this WhatsApp channel has no phone number ID: an admin sets it in admin → Channels"
            )
        base = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "".join(ch for ch in conversation.external_id if ch.isdigit()),
        }
        if message.reply_to_id:
            reply_wamid = (
                Message.objects.filter(pk=message.reply_to_id)
                .values_list("external_id", flat=True)
                .first()
            )
            if reply_wamid:
                base["context"] = {"message_id": reply_wamid}
        if template:
            parts = [
                {
                    "type": "template",
                    "template": {
                        "name": template["name"],
                        "language": {"code": template["language"]},
                        "components": template["components"],
                    },
                }
            ]
        else:
            parts = self._parts(message, phone_number_id)
        done = dict((message.metadata or {}).get("whatsapp_parts") or {})
        wamid = None
        for index, part in enumerate(parts):
            key = str(index)
            if key in done:
                wamid = done[key]
                continue
            body = {**base, **(part() if callable(part) else part)}
            wamid = self._post_message(phone_number_id, body)
            if len(parts) > 1 and wamid:
                done[key] = wamid
                message.metadata = {**(message.metadata or {}), "whatsapp_parts": done}
                Message.objects.filter(pk=message.pk).update(metadata=message.metadata)
        return SendResult(external_id=wamid)

    def _parts(self, message: Message, phone_number_id: str) -> list:
        """The message's calls, in order; a media part is a function so that its upload runs
        only when that part is actually sent (not again for a part sent before a retry)."""
        attachments = list(message.attachments.all())
        text = message.content or ""
        if not attachments:
            return [{"type": "text", "text": {"body": text, "preview_url": False}}]
        parts: list = []
        caption_left = text
        for attachment in attachments:
            kind = media_kind(attachment.mime_type)
            caption = ""
            if caption_left and kind != "audio":
                caption, caption_left = caption_left, ""
            parts.append(
                lambda a=attachment, k=kind, c=caption: {
                    "type": k,
                    k: self._media_object(a, k, c, phone_number_id),
                }
            )
        if caption_left:
            parts.append({"type": "text", "text": {"body": caption_left, "preview_url": False}})
        return parts

    def _media_object(
        self, attachment: Attachment, kind: str, caption: str, phone_number_id: str
    ) -> dict:
        ref = attachment.provider_ref or ""
        if ref.startswith(("https://", "http://")):
            media = {"link": ref}  # a public URL: Meta downloads it, no upload needed
        else:
            media = {"id": self._upload(attachment, phone_number_id)}
        if caption:
            media["caption"] = caption
        if kind == "document" and attachment.filename:
            media["filename"] = attachment.filename
        return media

    def _upload(self, attachment: Attachment, phone_number_id: str) -> str:
        """The stored file → Meta's media endpoint → its media id (kept 30 days by Meta)."""
        if not attachment.file:
            raise PermanentDeliveryError(
                f"the file of {attachment.filename or 'an attachment'} is not stored: nothing "
                "to upload"
            )
        with attachment.file.open("rb") as stored:
            data = stored.read()
        mime_type = attachment.mime_type or "application/octet-stream"
        try:
            response = requests.post(
                f"{graph_base(self.channel)}/{phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": mime_type},
                files={"file": (attachment.filename or "file", data, mime_type)},
                headers=auth_headers(self.channel),
                timeout=settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"],
            )
        except requests.RequestException as exc:
            # Nothing reaches the customer through an upload: retrying it is always safe.
            raise TemporaryDeliveryError(
                f"WhatsApp media upload failed: {exc.__class__.__name__}"
            ) from exc
        answer = _json(response)
        if response.status_code >= 300 or not answer.get("id"):
            raise _graph_error(response, answer, "media upload")
        return str(answer["id"])

    def _post_message(self, phone_number_id: str, body: dict) -> str | None:
        try:
            response = requests.post(
                f"{graph_base(self.channel)}/{phone_number_id}/messages",
                json=body,
                headers=auth_headers(self.channel),
                timeout=settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"],
            )
        except requests.RequestException as exc:
            raise request_failure(exc, "WhatsApp Cloud API") from exc
        answer = _json(response)
        if response.status_code >= 300:
            raise _graph_error(response, answer, "")
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            # Accepted all the same: failing it would invite a duplicate on retry.
            return None


def _graph_error(response: requests.Response, answer: dict, what: str):
    """Meta's error → retry later (rate limits 130429 / 131056, 5xx) or fail with its words
    (131047 outside the window, 131026 undeliverable, bad parameters…)."""
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    reason = error_reason(error) if error else f"WhatsApp answered HTTP {response.status_code}"
    if what:
        reason = f"{what}: {reason}"
    if (
        response.status_code == 429
        or response.status_code >= 500
        or error.get("code") in TEMPORARY_CODES
    ):
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)


def _json(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
