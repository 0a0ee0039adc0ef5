"""`/api/v1/notifications/…`: a manager's notification settings and their devices' Web Push
subscriptions (the inbox page calls these with the session; tokens work too)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.schema import ERRORS, ErrorSerializer, errors
from . import push, services
from .models import NotificationPreference, PushSubscription


class PushStateSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="false until VAPID keys are configured")
    public_key = serializers.CharField(
        allow_null=True, help_text="the VAPID key browsers subscribe with (applicationServerKey)"
    )
    subscriptions = serializers.IntegerField(help_text="this user's subscribed devices")


class NotificationSettingsSerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=NotificationPreference.Level.choices,
        help_text="all: every new message in my teams' conversations; mine: conversations "
        "assigned to me and mentions; none: nothing",
    )
    sound = serializers.BooleanField(help_text="play a sound for new messages")
    push = PushStateSerializer(read_only=True)


class NotificationSettingsUpdateSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=NotificationPreference.Level.choices, required=False)
    sound = serializers.BooleanField(required=False)


class SubscriptionKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=120)
    auth = serializers.CharField(max_length=60)


class PushSubscriptionInputSerializer(serializers.Serializer):
    """What `PushSubscription.toJSON()` gives in the browser."""

    endpoint = serializers.URLField(max_length=2000)
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815
    keys = SubscriptionKeysSerializer()

    def validate_endpoint(self, value):
        problem = push.endpoint_problem(value)
        if problem:
            raise serializers.ValidationError(f"the endpoint {problem}")
        return value

    def validate_keys(self, value):
        problems = push.key_problems(value["p256dh"], value["auth"])
        if problems:
            raise serializers.ValidationError(problems)
        return value


class EndpointSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=2000)


class PushSubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PushSubscription
        fields = ["id", "endpoint", "user_agent", "created_at", "last_success_at"]


def settings_payload(user, preference=None) -> dict:
    preference = preference or services.preference_for(user)
    available = push.is_available()
    return {
        "level": preference.level,
        "sound": preference.sound,
        "push": {
            "available": available,
            "public_key": push.public_key() if available else None,
            "subscriptions": PushSubscription.objects.filter(user=user).count(),
        },
    }


class NotificationSettingsView(APIView):
    @extend_schema(responses={200: NotificationSettingsSerializer, **errors()})
    def get(self, request):
        return Response(settings_payload(request.user))

    @extend_schema(
        request=NotificationSettingsUpdateSerializer,
        responses={200: NotificationSettingsSerializer, **errors(400)},
    )
    def patch(self, request):
        serializer = NotificationSettingsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preference = services.update_preference(request.user, **serializer.validated_data)
        return Response(settings_payload(request.user, preference))


PUSH_OFF = OpenApiResponse(
    ErrorSerializer, description="Web Push is not configured on this server (no VAPID keys)"
)


class PushSubscriptionListView(APIView):
    @extend_schema(responses={200: PushSubscriptionSerializer(many=True), **errors()})
    def get(self, request):
        rows = PushSubscription.objects.filter(user=request.user).order_by("-created_at")
        return Response(PushSubscriptionSerializer(rows, many=True).data)

    @extend_schema(
        request=PushSubscriptionInputSerializer,
        responses={
            201: PushSubscriptionSerializer,
            200: OpenApiResponse(
                PushSubscriptionSerializer, description="this endpoint was already subscribed"
            ),
            **errors(400),
            409: PUSH_OFF,
        },
        summary="Subscribe this browser to Web Push (the body is PushSubscription.toJSON())",
    )
    def post(self, request):
        if not push.is_available():
            return Response(
                {"detail": "Web Push is not configured on this server (no VAPID keys)"},
                status=status.HTTP_409_CONFLICT,
            )
        serializer = PushSubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription, created = services.subscribe(
            request.user,
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(
            PushSubscriptionSerializer(subscription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PushUnsubscribeView(APIView):
    @extend_schema(
        request=EndpointSerializer,
        responses={204: None, **errors(400, 404)},
        summary="Unsubscribe this browser (by its push endpoint)",
    )
    def post(self, request):
        serializer = EndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deleted, _ = PushSubscription.objects.filter(
            user=request.user, endpoint=serializer.validated_data["endpoint"]
        ).delete()
        if not deleted:
            return Response({"detail": "no such subscription"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PushSubscriptionDetailView(APIView):
    @extend_schema(responses={204: None, 404: ERRORS[404], 401: ERRORS[401]})
    def delete(self, request, subscription_id: int):
        deleted, _ = PushSubscription.objects.filter(user=request.user, pk=subscription_id).delete()
        if not deleted:
            return Response({"detail": "no such subscription"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
