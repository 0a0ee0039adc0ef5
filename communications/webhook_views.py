"""`/webhooks/<source>/<channel_id>/`: the one door for every platform's webhook.

Authenticate, check the shape, store the raw delivery with its verdict, answer. Processing
runs behind it in the worker (communications/webhooks.py). Throttled per failed
authentication and per channel, never per source address of authentic deliveries: Meta and
Telegram deliver from a handful of addresses (webhook_guard.py).
"""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import webhook_guard, webhooks
from .models import Channel, WebhookDelivery

Verdict = WebhookDelivery.Verdict


@csrf_exempt
def receive_webhook(request, source: str, channel_id: int):
    receiver = webhooks.receiver_for(source)
    if receiver is None:
        return JsonResponse({"detail": f"no webhook named '{source}'"}, status=404)
    if request.method not in ("GET", "POST"):
        return JsonResponse({"detail": "this webhook accepts GET and POST"}, status=405)
    try:
        return _receive(request, receiver, channel_id)
    except webhook_guard.Refused as refused:
        response = JsonResponse({"detail": refused.detail}, status=429)
        response["Retry-After"] = str(refused.retry_after)
        return response


def _receive(request, receiver: webhooks.WebhookReceiver, channel_id: int):
    webhook_guard.check_not_blocked(request, channel_id)
    channel = Channel.objects.filter(pk=channel_id, kind__in=receiver.channel_kinds).first()
    if channel is None:
        webhook_guard.note_failed_authentication(request, channel_id)
        return JsonResponse(
            {"detail": f"no {receiver.source} channel with id {channel_id}"}, status=404
        )
    if request.method == "GET":
        response = receiver.handshake(channel, request)
        if response.status_code in (401, 403):
            webhook_guard.note_failed_authentication(request, channel_id)
        return response
    body = request.body
    headers = webhooks.kept_headers(receiver, request)
    try:
        receiver.authenticate(channel, request, body)
    except webhooks.WebhookRejected as rejected:
        webhook_guard.note_failed_authentication(request, channel_id)
        webhooks.log_rejected(
            channel, receiver.source, headers, body, Verdict.BAD_SIGNATURE, rejected.reason
        )
        return JsonResponse({"detail": rejected.reason}, status=rejected.status)
    webhook_guard.admit_delivery(channel.pk)
    try:
        inspection = receiver.inspect(channel, body)
    except webhooks.Malformed as malformed:
        webhooks.log_rejected(
            channel, receiver.source, headers, body, Verdict.MALFORMED, malformed.reason
        )
        return JsonResponse({"detail": malformed.reason}, status=400)
    delivery_id, duplicate = webhooks.log_accepted(
        channel, receiver.source, headers, body, inspection.dedup_key
    )
    if not duplicate:
        webhooks.accepted(delivery_id)
    status, body = receiver.answer(duplicate)
    return HttpResponse(body, status=status, content_type="application/json")
