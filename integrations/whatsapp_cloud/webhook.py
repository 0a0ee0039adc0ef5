"""The WhatsApp Cloud API webhook: `/webhooks/whatsapp/<channel_id>/`, a webhook-log receiver.

GET answers Meta's verification challenge when `hub.verify_token` matches the channel's
`verify_token`. POST must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with
the app secret>`; anything else is refused (401) and no message is stored. The door stores the
delivery and answers at once; the worker downloads media and ingests (communications/webhooks.py).
Deliveries are at least once: ingest deduplicates by wamid, and statuses only move forward.
"""

from django.http import HttpResponse

from communications.models import Channel, Message
from communications.services import edits
from communications.services.ingest import ingest_messages
from communications.services.send import update_status_by_external_id
from communications.webhooks import Inspection, Malformed, WebhookReceiver, WebhookRejected
from crm.safe_json import JSONRejected, load_json

from ..meta_signature import (  # noqa: F401 - signature_for: tests sign with it
    SIGNATURE_HEADER,
    answer_challenge,
    signature_for,
    signature_is_valid,
)
from .media import with_media
from .parse import parse_payload
from .schema import shape_error


class WhatsAppCloudReceiver(WebhookReceiver):
    source = "whatsapp"
    channel_kinds = (Channel.Kind.WHATSAPP,)
    kept_headers = (SIGNATURE_HEADER,)

    def handshake(self, channel, request) -> HttpResponse:
        return answer_challenge(request, channel.secrets.get("verify_token", ""))

    def authenticate(self, channel, request, body: bytes) -> None:
        if not signature_is_valid(
            channel.secrets.get("app_secret", ""), body, request.headers.get(SIGNATURE_HEADER, "")
        ):
            raise WebhookRejected(f"missing or wrong {SIGNATURE_HEADER} signature")

    def inspect(self, channel, body: bytes) -> Inspection:
        try:
            payload = load_json(body)
        except JSONRejected as exc:
            raise Malformed(str(exc)) from exc
        problem = shape_error(payload)  # what parse_payload would refuse, without parsing
        if problem:
            raise Malformed(f"not a WhatsApp webhook payload: {problem}")
        return Inspection()

    def process(self, channel, deliveries) -> None:
        payloads = [load_json(bytes(delivery.body)) for delivery in deliveries]
        process_payloads(channel, payloads)


def _phone_number_id(channel: Channel) -> str:
    return str(channel.config.get("phone_number_id", ""))


def process_payload(channel: Channel, payload: dict) -> int:
    return process_payloads(channel, [payload])


def process_payloads(channel: Channel, payloads: list[dict]) -> int:
    """Ingest the messages of every delivery (media downloaded first) in one batch, then apply
    the statuses in order.

    Returns how many messages were newly stored. Media that cannot be downloaded is stored as
    a placeholder attachment and retried; the message is never held back for it.
    """
    parsed = [parse_payload(p, phone_number_id=_phone_number_id(channel)) for p in payloads]
    messages = [message for one in parsed for message in one.messages]
    statuses = [status for one in parsed for status in one.statuses]
    reactions = [reaction for one in parsed for reaction in one.reactions]
    if any(one.has_media for one in parsed):
        # A redelivery must not download again what is already stored.
        known = set(
            Message.objects.filter(
                channel=channel, external_id__in=[m.external_id for m in messages]
            ).values_list("external_id", flat=True)
        )
        messages = [m for m in messages if m.external_id not in known]
        messages = with_media(channel, messages)
    results = ingest_messages(channel, messages) if messages else []
    for status in statuses:
        update_status_by_external_id(channel.pk, status.external_id, status.status, status.reason)
    for reaction in reactions:
        # Shown on the message it names; a reaction to a message we never stored changes
        # nothing (WhatsApp allows reactions up to 30 days back).
        edits.apply_reaction(
            channel_id=channel.pk,
            external_id=reaction.target_external_id,
            sender=reaction.sender,
            key=reaction.emoji,
            reaction_id=reaction.external_id,
        )
    return sum(1 for result in results if result.created)
