"""Inbound endpoint of the HTTP API channel: POST /api/v1/channels/<id>/inbound/."""

import base64
import binascii
import hmac

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from communications.api.schema import ErrorSerializer, errors
from communications.models import Channel, Message
from communications.serializers import MessageSerializer
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
)
from integrations import webhook_guard

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
    # Throttled per channel and per failed authentication (integrations/webhook_guard.py).
    throttle_classes: list = []

    @extend_schema(
        request=InboundPayloadSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(
                MessageSerializer, description="already stored (same external_id)"
            ),
            **errors(400, 404, 409),
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
        expected = channel.secrets.get("inbound_token", "")
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            webhook_guard.note_failed_authentication(request, channel_id)
            return Response(
                {"detail": "missing or wrong channel token (Authorization: Bearer <token>)"},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        webhook_guard.admit_delivery(channel.pk)
        if not channel.is_active:
            return Response({"detail": "this channel is disabled"}, status=status.HTTP_409_CONFLICT)
        serializer = InboundPayloadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sender = data["sender"]
        result = ingest_message(
            channel,
            InboundMessage(
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
            ),
        )
        return Response(
            MessageSerializer(result.message).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
