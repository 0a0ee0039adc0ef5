"""The WhatsApp Cloud API webhook: `/webhooks/whatsapp/<channel_id>/`.

GET answers Meta's verification challenge when `hub.verify_token` matches the channel's
`verify_token`. POST must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with
the app secret>`; anything else is refused and nothing is stored. Deliveries are at least once:
the ingest path deduplicates by wamid, and statuses only move forward.

A delivery without media is stored before answering (one batch, milliseconds); one with media
is handed to a Celery task that downloads the media and then ingests, so Meta gets its 200 fast.
"""

import hashlib
import hmac
import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from kombu.exceptions import OperationalError as BrokerUnreachable

from communications.models import Channel, Message
from communications.services.ingest import ingest_messages
from communications.services.send import update_status_by_external_id
from crm.safe_json import JSONRejected, load_json
from integrations import webhook_guard

from .media import with_media
from .parse import PayloadError, parse_payload

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_for(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_is_valid(app_secret: str, body: bytes, header: str) -> bool:
    if not app_secret or not header:
        return False
    return hmac.compare_digest(header.strip().encode(), signature_for(app_secret, body).encode())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request, channel_id: int):
    try:
        return _handle(request, channel_id)
    except webhook_guard.Refused as refused:
        response = JsonResponse({"detail": refused.detail}, status=429)
        response["Retry-After"] = str(refused.retry_after)
        return response


def _handle(request, channel_id: int):
    # Throttled per failed authentication and per channel, not per source address: Meta
    # delivers from a handful of addresses (integrations/webhook_guard.py).
    webhook_guard.check_not_blocked(request, channel_id)
    channel = Channel.objects.filter(pk=channel_id, kind=Channel.Kind.WHATSAPP).first()
    if channel is None:
        webhook_guard.note_failed_authentication(request, channel_id)
        return JsonResponse({"detail": "no WhatsApp channel with this id"}, status=404)
    if request.method == "GET":
        response = _verify(request, channel)
        if response.status_code == 403:
            webhook_guard.note_failed_authentication(request, channel_id)
        return response
    body = request.body
    if not signature_is_valid(
        channel.secrets.get("app_secret", ""), body, request.headers.get(SIGNATURE_HEADER, "")
    ):
        webhook_guard.note_failed_authentication(request, channel_id)
        return JsonResponse(
            {"detail": f"missing or wrong {SIGNATURE_HEADER} signature"}, status=401
        )
    webhook_guard.admit_delivery(channel.pk)
    try:
        payload = load_json(body)
    except JSONRejected as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    try:
        parsed = parse_payload(payload, phone_number_id=_phone_number_id(channel))
    except PayloadError as exc:
        return JsonResponse({"detail": f"not a WhatsApp webhook payload: {exc}"}, status=400)
    if not channel.is_active:
        logger.info("WhatsApp delivery for disabled channel %s dropped", channel.pk)
        return JsonResponse({"detail": "channel disabled; nothing stored"})
    if parsed.has_media:
        from .tasks import process_whatsapp_delivery

        try:
            process_whatsapp_delivery.delay(channel.pk, payload)
            return JsonResponse({"queued": True})
        except BrokerUnreachable:  # Redis down: store it now rather than lose the delivery
            logger.warning(
                "WhatsApp delivery for channel %s could not be queued; processed inline",
                channel.pk,
                exc_info=True,
            )
    stored = process_payload(channel, payload)
    return JsonResponse({"queued": False, "stored": stored})


def _verify(request, channel: Channel) -> HttpResponse:
    expected = channel.secrets.get("verify_token", "")
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")


def _phone_number_id(channel: Channel) -> str:
    return str(channel.config.get("phone_number_id", ""))


def process_payload(channel: Channel, payload: dict) -> int:
    """Ingest the messages (media downloaded first) in one batch, then apply the statuses.

    Returns how many messages were newly stored. Media that cannot be downloaded is stored as
    a placeholder attachment and retried; the message is never held back for it.
    """
    parsed = parse_payload(payload, phone_number_id=_phone_number_id(channel))
    messages = parsed.messages
    if parsed.has_media:
        # A redelivery must not download again what is already stored.
        known = set(
            Message.objects.filter(
                channel=channel, external_id__in=[m.external_id for m in messages]
            ).values_list("external_id", flat=True)
        )
        messages = [m for m in messages if m.external_id not in known]
        messages = with_media(channel, messages)
    results = ingest_messages(channel, messages) if messages else []
    for status in parsed.statuses:
        update_status_by_external_id(channel.pk, status.external_id, status.status, status.reason)
    return sum(1 for result in results if result.created)
