"""The one JSON shape of each object, used by the API and by realtime event payloads alike."""

from rest_framework import serializers

from crm.models import Contact, Order

from .media import attachment_url
from .models import Attachment, Channel, Conversation, Message


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "filename", "mime_type", "size", "width", "height", "duration_ms", "url"]

    def get_url(self, obj: Attachment) -> str:
        return attachment_url(obj)


class MessageSerializer(serializers.ModelSerializer):
    attachments = AttachmentSerializer(many=True, read_only=True)
    sender_name = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "direction",
            "kind",
            "content",
            "status",
            "failure_reason",
            "client_id",
            "external_id",
            "sender_name",
            "reply_to_id",
            "is_edited",
            "is_deleted",
            "metadata",
            "created_at",
            "updated_at",
            "attachments",
        ]

    def get_sender_name(self, obj: Message) -> str:
        if obj.sender_user_id:
            user = obj.sender_user
            return user.get_full_name() or user.get_username()
        return ""


class ChannelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["id", "kind", "name", "is_active"]


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "number", "title", "status", "amount", "currency", "ordered_at"]


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "email", "username", "avatar_url", "notes"]


class ContactWithOrdersSerializer(ContactSerializer):
    orders = OrderSerializer(many=True, read_only=True)

    class Meta(ContactSerializer.Meta):
        fields = ContactSerializer.Meta.fields + ["orders"]


class ConversationSerializer(serializers.ModelSerializer):
    """A row of the inbox list; contact and channel come from select_related."""

    contact = ContactSerializer(read_only=True)
    channel = ChannelSerializer(read_only=True)
    assignee = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "external_id",
            "subject",
            "status",
            "snoozed_until",
            "assignee",
            "team_id",
            "is_archived",
            "unread_count",
            "last_message_at",
            "last_inbound_at",
            "last_message_preview",
            "created_at",
            "contact",
            "channel",
        ]

    def get_assignee(self, obj: Conversation) -> dict | None:
        if obj.assignee_id is None:
            return None
        user = obj.assignee
        return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


class ConversationDetailSerializer(ConversationSerializer):
    """The thread header and the customer's card in one response: contact with orders."""

    contact = ContactWithOrdersSerializer(read_only=True)


class ConversationUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)
    assignee_id = serializers.IntegerField(required=False, allow_null=True)
    team_id = serializers.IntegerField(required=False, allow_null=True)
    is_archived = serializers.BooleanField(required=False)


class SendMessageSerializer(serializers.Serializer):
    client_id = serializers.CharField(max_length=64)
    content = serializers.CharField(allow_blank=True, required=False, default="", max_length=20000)
    kind = serializers.ChoiceField(
        choices=[Message.Kind.TEXT, Message.Kind.NOTE], default=Message.Kind.TEXT
    )
    reply_to_id = serializers.IntegerField(required=False, allow_null=True)


def message_payload(message: Message) -> dict:
    return MessageSerializer(message).data


def conversation_payload(conversation: Conversation) -> dict:
    return ConversationSerializer(conversation).data
