"""Outbound WhatsApp Cloud API messages: one POST to `{base}/{phone_number_id}/messages`.

Channel config: `{"phone_number_id": "...", "graph_api_base": "https://graph.facebook.com/v21.0"}`;
secrets: `{"access_token": ..., "app_secret": ..., "verify_token": ...}`.
"""

from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone

from communications.models import Channel, Message

from ..base import (
    ConfigProblem,
    PermanentDeliveryError,
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
        if not secrets.get("verify_token"):
            problems.append(
                ConfigProblem("Webhook verify token is not set: Meta cannot subscribe", False)
            )
        return problems

    def send(self, message: Message) -> SendResult:
        conversation = message.conversation
        last_inbound = conversation.last_inbound_at
        if last_inbound is None or timezone.now() - last_inbound > CUSTOMER_SERVICE_WINDOW:
            raise PermanentDeliveryError(OUTSIDE_WINDOW)
        if message.kind != Message.Kind.TEXT or message.attachments.exists():
            raise PermanentDeliveryError(
                "sending attachments through the WhatsApp Cloud API is not available in this "
                "version of Switchboard yet; send text"
            )
        phone_number_id = self.channel.config.get("phone_number_id", "")
        if not phone_number_id:
            raise PermanentDeliveryError(
                "this WhatsApp channel has no phone number ID: an admin sets it in admin → Channels"
            )
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "".join(ch for ch in conversation.external_id if ch.isdigit()),
            "type": "text",
            "text": {"body": message.content, "preview_url": False},
        }
        if message.reply_to_id:
            reply_wamid = (
                Message.objects.filter(pk=message.reply_to_id)
                .values_list("external_id", flat=True)
                .first()
            )
            if reply_wamid:
                body["context"] = {"message_id": reply_wamid}
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
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            reason = (
                error_reason(error) if error else f"WhatsApp answered HTTP {response.status_code}"
            )
            if (
                response.status_code == 429
                or response.status_code >= 500
                or error.get("code") in TEMPORARY_CODES
            ):
                raise TemporaryDeliveryError(reason)
            raise PermanentDeliveryError(reason)
        try:
            return SendResult(external_id=str(answer["messages"][0]["id"]))
        except (KeyError, IndexError, TypeError):
            # Accepted all the same: failing it would invite a duplicate on retry.
            return SendResult(external_id=None)


def _json(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
