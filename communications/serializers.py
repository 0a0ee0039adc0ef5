"""The one JSON shape of each object, used by the API, the pages and realtime events alike.

The shapes are built by plain functions (`message_payload`, `conversation_payload`, …): the
ingest path serialises two payloads per message and the inbox list up to a hundred rows, and
DRF's field machinery costs milliseconds per object. The DRF classes below declare the same
fields for validation of input and for the OpenAPI schema, and delegate their output to these
functions; tests/spine/test_payloads.py keeps the two in step.
"""

from datetime import datetime

from rest_framework import serializers

from crm.models import Contact, Order

from .media import attachment_url
from .models import Attachment, Channel, Conversation, Message


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _user_name(user) -> str:
    return user.get_full_name() or user.get_username()


def attachment_payload(attachment: Attachment) -> dict:
    return {
        "id": attachment.pk,
        "filename": attachment.filename,
        "mime_type": attachment.mime_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "duration_ms": attachment.duration_ms,
        "url": attachment_url(attachment),
    }


def message_payload(message: Message) -> dict:
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "content": message.content,
        "status": message.status,
        "failure_reason": message.failure_reason,
        "client_id": message.client_id,
        "external_id": message.external_id,
        "sender_name": _user_name(message.sender_user) if message.sender_user_id else "",
        "reply_to_id": message.reply_to_id,
        "is_edited": message.is_edited,
        "is_deleted": message.is_deleted,
        "metadata": message.metadata,
        "created_at": _time(message.created_at),
        "updated_at": _time(message.updated_at),
        "attachments": [attachment_payload(a) for a in message.loaded_attachments()],
    }


def channel_payload(channel: Channel) -> dict:
    return {
        "id": channel.pk,
        "kind": channel.kind,
        "name": channel.name,
        "is_active": channel.is_active,
    }


def order_payload(order: Order) -> dict:
    return {
        "id": order.pk,
        "number": order.number,
        "title": order.title,
        "status": order.status,
        "amount": f"{order.amount:.2f}",
        "currency": order.currency,
        "ordered_at": _time(order.ordered_at),
    }


def contact_payload(contact: Contact, *, with_orders: bool = False) -> dict:
    payload = {
        "id": contact.pk,
        "name": contact.name,
        "phone": contact.phone,
        "email": contact.email,
        "username": contact.username,
        "avatar_url": contact.avatar_url,
        "notes": contact.notes,
    }
    if with_orders:
        payload["orders"] = [order_payload(o) for o in contact.orders.all()]
    return payload


def conversation_payload(conversation: Conversation, *, with_orders: bool = False) -> dict:
    """A row of the inbox list; contact, channel and assignee come from select_related."""
    assignee = None
    if conversation.assignee_id is not None:
        assignee = {"id": conversation.assignee_id, "name": _user_name(conversation.assignee)}
    return {
        "id": conversation.pk,
        "external_id": conversation.external_id,
        "subject": conversation.subject,
        "status": conversation.status,
        "snoozed_until": _time(conversation.snoozed_until),
        "assignee": assignee,
        "team_id": conversation.team_id,
        "is_archived": conversation.is_archived,
        "unread_count": conversation.unread_count,
        "last_message_at": _time(conversation.last_message_at),
        "last_inbound_at": _time(conversation.last_inbound_at),
        "last_message_preview": conversation.last_message_preview,
        "created_at": _time(conversation.created_at),
        "contact": contact_payload(conversation.contact, with_orders=with_orders),
        "channel": channel_payload(conversation.channel),
    }


class _PayloadSerializer(serializers.ModelSerializer):
    """Declares fields for the schema; output comes from the payload function."""

    payload = staticmethod(lambda instance: {})

    def to_representation(self, instance):
        return type(self).payload(instance)


class AttachmentSerializer(_PayloadSerializer):
    payload = staticmethod(attachment_payload)
    url = serializers.CharField(read_only=True, help_text="signed, expiring media link")

    class Meta:
        model = Attachment
        fields = ["id", "filename", "mime_type", "size", "width", "height", "duration_ms", "url"]


class MessageSerializer(_PayloadSerializer):
    payload = staticmethod(message_payload)
    attachments = AttachmentSerializer(many=True, read_only=True)
    sender_name = serializers.CharField(read_only=True)

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


class ChannelSerializer(_PayloadSerializer):
    payload = staticmethod(channel_payload)

    class Meta:
        model = Channel
        fields = ["id", "kind", "name", "is_active"]


class OrderSerializer(_PayloadSerializer):
    payload = staticmethod(order_payload)

    class Meta:
        model = Order
        fields = ["id", "number", "title", "status", "amount", "currency", "ordered_at"]


class ContactSerializer(_PayloadSerializer):
    payload = staticmethod(contact_payload)

    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "email", "username", "avatar_url", "notes"]


class ContactWithOrdersSerializer(ContactSerializer):
    payload = staticmethod(lambda contact: contact_payload(contact, with_orders=True))
    orders = OrderSerializer(many=True, read_only=True)

    class Meta(ContactSerializer.Meta):
        fields = ContactSerializer.Meta.fields + ["orders"]


class AssigneeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ConversationSerializer(_PayloadSerializer):
    """A row of the inbox list."""

    payload = staticmethod(conversation_payload)

    contact = ContactSerializer(read_only=True)
    channel = ChannelSerializer(read_only=True)
    assignee = AssigneeSerializer(read_only=True, allow_null=True)

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


class ConversationDetailSerializer(ConversationSerializer):
    """The thread header and the customer's card in one response: contact with orders."""

    payload = staticmethod(lambda c: conversation_payload(c, with_orders=True))

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
