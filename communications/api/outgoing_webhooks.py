"""/api/v1/outgoing-webhooks/: integrators' subscriptions and their delivery log, staff only.

The signing secret is write-only: given (or generated) on create and shown in that answer
only; a PATCH with `secret` replaces it."""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import OutgoingWebhookDelivery, OutgoingWebhookSubscription
from ..services import outgoing_webhooks
from .params import bool_param
from .schema import ERRORS, ErrorSerializer

PAGE_LIMIT = 100


class IsStaffWithWebhookPermission(BasePermission):
    """Staff with the model permission (superusers have it): a subscription receives every
    conversation's events, so a manager's team scoping cannot apply."""

    message = "only staff with the outgoing webhook permission may manage outgoing webhooks"

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and user.has_perm("communications.change_outgoingwebhooksubscription")
        )


def _errors(*codes):
    answers = {
        401: ERRORS[401],
        403: OpenApiResponse(ErrorSerializer, description="Not staff with the permission"),
    }
    for code in codes:
        answers[code] = ERRORS[code]
    return answers


class SubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=OutgoingWebhookSubscription.EVENT_TYPES),
        allow_empty=False,
    )
    url = serializers.URLField(max_length=500)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=16,
        max_length=200,
        help_text="HMAC key for X-Switchboard-Signature; generated when left out on create",
    )

    class Meta:
        model = OutgoingWebhookSubscription
        fields = [
            "id",
            "name",
            "url",
            "events",
            "secret",
            "is_active",
            "disabled_reason",
            "disabled_at",
            "consecutive_failures",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "disabled_reason",
            "disabled_at",
            "consecutive_failures",
            "created_at",
        ]

    def validate_url(self, value):
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("must be an http:// or https:// URL")
        return value

    def validate_events(self, value):
        return sorted(set(value))

    def save_secret(self, subscription, secret):
        subscription.secrets = {"signing_secret": secret}

    def create(self, validated_data):
        secret = validated_data.pop("secret", None) or outgoing_webhooks.new_secret()
        subscription = OutgoingWebhookSubscription(**validated_data)
        self.save_secret(subscription, secret)
        subscription.save()
        subscription._new_secret = secret
        return subscription

    def update(self, instance, validated_data):
        secret = validated_data.pop("secret", None)
        if secret:
            self.save_secret(instance, secret)
        if validated_data.get("is_active") and not instance.is_active:
            instance.disabled_reason, instance.disabled_at = "", None
            instance.consecutive_failures, instance.failing_since = 0, None
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save()
        return instance


class CreatedSubscriptionSerializer(SubscriptionSerializer):
    signing_secret = serializers.CharField(
        read_only=True, help_text="shown in this answer only: keep it"
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "signing_secret"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = OutgoingWebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "conversation_id",
            "created_at",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
        ]


class DeliveryPage(serializers.Serializer):
    results = DeliverySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


def _subscription(pk: int):
    return OutgoingWebhookSubscription.objects.filter(pk=pk).first()


NOT_FOUND = Response({"detail": "no such outgoing webhook"}, status=status.HTTP_404_NOT_FOUND)


class SubscriptionListView(APIView):
    permission_classes = [IsStaffWithWebhookPermission]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "is_active", bool, description="`true` / `false` (or `1` / `0`): only those"
            )
        ],
        responses={200: SubscriptionSerializer(many=True), **_errors(400)},
    )
    def get(self, request):
        rows = OutgoingWebhookSubscription.objects.order_by("id")
        if request.query_params.get("is_active"):
            rows = rows.filter(is_active=bool_param(request.query_params, "is_active"))
        rows = rows[:PAGE_LIMIT]
        return Response(SubscriptionSerializer(rows, many=True).data)

    @extend_schema(
        request=SubscriptionSerializer,
        responses={201: CreatedSubscriptionSerializer, **_errors(400)},
    )
    def post(self, request):
        serializer = SubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save()
        data = CreatedSubscriptionSerializer(subscription).data
        data["signing_secret"] = subscription._new_secret
        return Response(data, status=status.HTTP_201_CREATED)


class SubscriptionDetailView(APIView):
    permission_classes = [IsStaffWithWebhookPermission]

    @extend_schema(responses={200: SubscriptionSerializer, **_errors(404)})
    def get(self, request, subscription_id: int):
        subscription = _subscription(subscription_id)
        if subscription is None:
            return NOT_FOUND
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        request=SubscriptionSerializer(partial=True),
        responses={200: SubscriptionSerializer, **_errors(400, 404)},
    )
    def patch(self, request, subscription_id: int):
        with transaction.atomic():
            subscription = (
                OutgoingWebhookSubscription.objects.select_for_update()
                .filter(pk=subscription_id)
                .first()
            )
            if subscription is None:
                return NOT_FOUND
            serializer = SubscriptionSerializer(subscription, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            serializer.save()
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(responses={204: None, **_errors(404)})
    def delete(self, request, subscription_id: int):
        deleted, _ = OutgoingWebhookSubscription.objects.filter(pk=subscription_id).delete()
        if not deleted:
            return NOT_FOUND
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryListView(APIView):
    permission_classes = [IsStaffWithWebhookPermission]

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", int, description="the next_cursor of the previous page"),
            OpenApiParameter(
                "state", str, enum=[s for s, _ in OutgoingWebhookDelivery.State.choices]
            ),
        ],
        responses={200: DeliveryPage, **_errors(400, 404)},
    )
    def get(self, request, subscription_id: int):
        if _subscription(subscription_id) is None:
            return NOT_FOUND
        rows = OutgoingWebhookDelivery.objects.filter(subscription_id=subscription_id)
        cursor = request.query_params.get("cursor") or ""
        if cursor:
            if not cursor.isdigit() or len(cursor) > 18:
                return Response({"cursor": ["must be a next_cursor value"]}, status=400)
            rows = rows.filter(id__lt=int(cursor))
        state = request.query_params.get("state") or ""
        if state:
            if state not in OutgoingWebhookDelivery.State.values:
                return Response({"state": [f"'{state[:40]}' is not a delivery state"]}, status=400)
            rows = rows.filter(state=state)
        page = list(rows.order_by("-id")[: PAGE_LIMIT + 1])
        more = len(page) > PAGE_LIMIT
        page = page[:PAGE_LIMIT]
        return Response(
            {
                "results": DeliverySerializer(page, many=True).data,
                "next_cursor": str(page[-1].pk) if more else None,
            }
        )
