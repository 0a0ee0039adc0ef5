"""The HTTP API channel: anything that can POST JSON can be a channel.

Inbound: `POST /api/v1/channels/<id>/inbound/` with the channel's inbound token.
Outbound: each message is POSTed as JSON to the channel's `callback_url`, signed with
`X-Switchboard-Signature: sha256=<hex HMAC of the raw body with the channel's callback secret>`.
With no callback URL, integrators pick replies up from the messages API instead.

Idempotency: every callback carries `Idempotency-Key: message-<id>` (and the id in the body).
Switchboard posts a message at most once on its own; a message whose callback may or may not
have arrived (a timeout after the request went out, a worker that died mid-call) becomes
"unknown", and a staff retry posts it again with the same key: a receiver that drops keys it
has seen gets every message exactly once.
"""

import hashlib
import hmac
import json

import requests
from django.conf import settings

from communications.models import Channel, Message

from ..base import PermanentDeliveryError, SendResult, TemporaryDeliveryError, request_failure

SIGNATURE_HEADER = "X-Switchboard-Signature"


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiChannelProvider:
    kind = Channel.Kind.API
    # We cannot know whether the integrator honours the Idempotency-Key: never resend blindly.
    resend_is_safe = False

    def __init__(self, channel: Channel):
        self.channel = channel

    def send(self, message: Message) -> SendResult:
        callback_url = self.channel.config.get("callback_url", "")
        if not callback_url:
            return SendResult(external_id=None)
        conversation = message.conversation
        body = json.dumps(
            {
                "event": "message.outbound",
                "message": {
                    "id": message.pk,
                    "client_id": message.client_id,
                    "conversation_id": conversation.pk,
                    "conversation_external_id": conversation.external_id,
                    "kind": message.kind,
                    "text": message.content,
                    "created_at": message.created_at.isoformat(),
                },
            },
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"message-{message.pk}"}
        secret = self.channel.secrets.get("callback_secret", "")
        if secret:
            headers[SIGNATURE_HEADER] = sign_body(secret, body)
        try:
            response = requests.post(
                callback_url,
                data=body,
                headers=headers,
                timeout=settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"],
            )
        except requests.RequestException as exc:
            raise request_failure(exc, "callback") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryDeliveryError(f"callback answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentDeliveryError(
                f"callback rejected the message: HTTP {response.status_code} {response.text[:200]}"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        external_id = answer.get("id") if isinstance(answer, dict) else None
        return SendResult(external_id=str(external_id) if external_id else None)
