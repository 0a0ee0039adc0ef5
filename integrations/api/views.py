"""Inbound endpoint of the HTTP API channel: POST /api/v1/channels/<id>/inbound/."""

import base64
import binascii
import hmac
import json

import jsonschema_rs
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from communications import webhook_guard, webhooks
from communications.api.schema import ErrorSerializer, errors
from communications.models import Channel, Message, WebhookDelivery
from communications.serializers import MessageSerializer
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
    ingest_messages,
)
from crm.safe_json import JSONRejected, SafeJSONParser, load_json

Verdict = WebhookDelivery.Verdict
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


class SenderSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    username = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    avatar_url = serializers.URLField(required=False, default="", allow_blank=True)


class AttachmentInSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    mime_type = serializers.CharField(max_length=127)
    data_base64 = serializers.CharField()

    def validate_data_base64(self, value: str) -> bytes:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError("is not valid base64") from exc
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise serializers.ValidationError(
                f"is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB"
            )
        return data


class InboundPayloadSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255)
    conversation_id = serializers.CharField(max_length=255, required=False, default="")
    sender = SenderSerializer()
    text = serializers.CharField(required=False, default="", allow_blank=True, max_length=20000)
    timestamp = serializers.DateTimeField(required=False, allow_null=True, default=None)
    subject = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    attachments = AttachmentInSerializer(many=True, required=False, default=list)

    def validate(self, attrs):
        if not attrs["text"].strip() and not attrs["attachments"]:
            raise serializers.ValidationError({"text": "a message needs text or an attachment"})
        return attrs


def _kind_for(attachments: list[dict]) -> str:
    if not attachments:
        return Message.Kind.TEXT
    major = attachments[0]["mime_type"].split("/")[0]
    return {
        "image": Message.Kind.IMAGE,
        "video": Message.Kind.VIDEO,
        "audio": Message.Kind.AUDIO,
    }.get(major, Message.Kind.FILE)


class ApiChannelInboundView(APIView):
    """Authenticated with the channel's own token: `Authorization: Bearer <inbound_token>`."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [SafeJSONParser]  # the raw body is logged and parsed again by the worker
    # Throttled per channel and per failed authentication (communications/webhook_guard.py).
    throttle_classes: list = []

    @extend_schema(
        request=InboundPayloadSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(
                MessageSerializer, description="already stored (same external_id)"
            ),
            202: OpenApiResponse(
                description="logged; processed by the worker (`Prefer: respond-async`)"
            ),
            **errors(400, 401, 404, 409),
            429: OpenApiResponse(ErrorSerializer, description="too many deliveries; retry later"),
        },
        summary="Deliver an inbound message (Authorization: Bearer <the channel's inbound token>)",
    )
    def post(self, request, channel_id: int):
        try:
            return self._post(request, channel_id)
        except webhook_guard.Refused as refused:
            return Response(
                {"detail": refused.detail},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(refused.retry_after)},
            )

    def _post(self, request, channel_id: int):
        webhook_guard.check_not_blocked(request, channel_id)
        channel = Channel.objects.filter(pk=channel_id, kind=Channel.Kind.API).first()
        if channel is None:
            webhook_guard.note_failed_authentication(request, channel_id)
            return Response({"detail": "no API channel with this id"}, status=404)
        body = request.body
        headers = webhooks.kept_headers(RECEIVER, request)
        try:
            RECEIVER.authenticate(channel, request, body)
        except webhooks.WebhookRejected as rejected:
            webhook_guard.note_failed_authentication(request, channel_id)
            webhooks.log_rejected(
                channel, RECEIVER.source, headers, body, Verdict.BAD_SIGNATURE, rejected.reason
            )
            return Response({"detail": rejected.reason}, status=rejected.status)
        webhook_guard.admit_delivery(channel.pk)
        if not channel.is_active:
            return Response({"detail": "this channel is disabled"}, status=status.HTTP_409_CONFLICT)
        serializer = InboundPayloadSerializer(data=request.data)
        if not serializer.is_valid():
            webhooks.log_rejected(
                channel,
                RECEIVER.source,
                headers,
                body,
                Verdict.MALFORMED,
                json.dumps(serializer.errors),
            )
            raise ValidationError(serializer.errors)
        external_id = serializer.validated_data["external_id"]
        if _wants_async(request):
            delivery_id, duplicate = webhooks.log_accepted(
                channel, RECEIVER.source, headers, body, dedup_key=external_id
            )
            if not duplicate:
                webhooks.accepted(delivery_id)
            return Response(
                {"delivery_id": delivery_id, "duplicate": duplicate},
                status=status.HTTP_202_ACCEPTED,
            )
        # Synchronous: the delivery is logged already claimed and processed in this request,
        # so the answer can carry the stored message.
        delivery_id, duplicate = webhooks.log_accepted(
            channel, RECEIVER.source, headers, body, dedup_key=external_id, claim=True
        )
        if duplicate:  # the first copy may still wait in the log: ingest is idempotent
            ingest_message(channel, inbound_message(serializer.validated_data))
        else:
            webhooks.process_claimed([delivery_id])
        message = Message.objects.filter(
            channel=channel, direction=Message.Direction.INBOUND, external_id=external_id
        ).first()
        if message is None:
            return Response(
                {
                    "detail": "stored for processing; it will appear shortly",
                    "delivery_id": delivery_id,
                },
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(
            MessageSerializer(message).data,
            status=status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED,
        )


def _string(max_length: int, required_text: bool = False) -> dict:
    rules = [{"type": "string", "maxLength": max_length, "pattern": "^[^\\u0000]*$"}]
    if required_text:
        rules.append({"pattern": "[^\\s\\u001c-\\u001f\\u0085]"})
    return {"allOf": rules}


# The common delivery — plain text, no attachment, no timestamp, e-mail or avatar — checked by
# a compiled schema (~5 µs) instead of the serializer (~300 µs; at the door and in the worker).
# It admits a subset of what InboundPayloadSerializer admits: anything else (also anything it
# would reject) goes through the serializer, so answers and error messages are the same.
_PLAIN_TEXT = jsonschema_rs.Draft202012Validator(
    {
        "type": "object",
        "required": ["external_id", "sender", "text"],
        "properties": {
            "external_id": _string(255, required_text=True),
            "conversation_id": _string(255),
            "sender": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": _string(255, required_text=True),
                    "name": _string(255),
                    "username": _string(255),
                    "phone": _string(32),
                },
                "not": {"anyOf": [{"required": ["email"]}, {"required": ["avatar_url"]}]},
            },
            "text": _string(20000, required_text=True),
            "subject": _string(255),
            "timestamp": {"type": "null"},
            "attachments": {"type": "array", "maxItems": 0},
        },
    }
)


def _plain_text_data(data: dict) -> dict:
    """What InboundPayloadSerializer's validated_data is for a payload _PLAIN_TEXT admits
    (CharFields trim surrounding whitespace; absent fields take their defaults)."""
    sender = data["sender"]
    return {
        "external_id": data["external_id"].strip(),
        "conversation_id": data.get("conversation_id", "").strip(),
        "sender": {
            "id": sender["id"].strip(),
            "name": sender.get("name", "").strip(),
            "username": sender.get("username", "").strip(),
            "phone": sender.get("phone", "").strip(),
            "email": "",
            "avatar_url": "",
        },
        "text": data["text"].strip(),
        "timestamp": None,
        "subject": data.get("subject", "").strip(),
        "attachments": [],
    }


def _wants_async(request) -> bool:
    """RFC 7240: `Prefer: respond-async` answers 202 once the delivery is logged."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "respond-async" for part in prefer.split(","))


def inbound_message(data: dict) -> InboundMessage:
    sender = data["sender"]
    return InboundMessage(
        sender=InboundSender(
            external_id=sender["id"],
            name=sender["name"],
            username=sender["username"],
            phone=sender["phone"],
            email=sender["email"],
            avatar_url=sender["avatar_url"],
        ),
        content=data["text"],
        kind=_kind_for(data["attachments"]),
        external_id=data["external_id"],
        conversation_external_id=data["conversation_id"],
        subject=data["subject"],
        timestamp=data["timestamp"],
        attachments=tuple(
            InboundAttachment(
                mime_type=a["mime_type"], filename=a["filename"], data=a["data_base64"]
            )
            for a in data["attachments"]
        ),
    )


class ApiChannelReceiver(webhooks.WebhookReceiver):
    """The API channel's deliveries in the webhook log (also served at /webhooks/api/<id>/)."""

    source = "api"
    channel_kinds = (Channel.Kind.API,)

    def authenticate(self, channel, request, body: bytes) -> None:
        expected = channel.secrets.get("inbound_token", "")
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise webhooks.WebhookRejected(
                "missing or wrong channel token (Authorization: Bearer <token>)"
            )

    def inspect(self, channel, body: bytes) -> webhooks.Inspection:
        return webhooks.Inspection(dedup_key=self._validated(body)["external_id"])

    def process(self, channel, deliveries) -> None:
        items = [inbound_message(self._validated(bytes(d.body))) for d in deliveries]
        if len(items) == 1:  # concurrent requests of one process share a batch (coalesce.py)
            ingest_message(channel, items[0])
        else:
            ingest_messages(channel, items)

    @staticmethod
    def _validated(body: bytes) -> dict:
        try:
            data = load_json(body)
        except JSONRejected as exc:
            raise webhooks.Malformed(str(exc)) from exc
        if _PLAIN_TEXT.is_valid(data):
            return _plain_text_data(data)
        serializer = InboundPayloadSerializer(data=data)
        if not serializer.is_valid():
            raise webhooks.Malformed(json.dumps(serializer.errors))
        return serializer.validated_data


RECEIVER = ApiChannelReceiver()
