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
    return display_name(user.first_name, user.last_name, user.get_username())


def display_name(first_name: str, last_name: str, username: str) -> str:
    """`get_full_name() or get_username()` of Django's user, from a row's three columns."""
    return f"{first_name} {last_name}".strip() or username


# Each shape is defined once, by a function of a plain row (a dict, as `.values()` returns it):
# the read endpoints build pages from rows without instantiating models (~50 µs a row), and
# the functions taking a model only copy its columns into such a row.
ATTACHMENT_COLUMNS = (
    "id",
    "filename",
    "mime_type",
    "size",
    "width",
    "height",
    "duration_ms",
    "download_state",
    "download_error",
    "thumbnail",
)
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "direction",
    "kind",
    "content",
    "status",
    "failure_reason",
    "client_id",
    "external_id",
    "reply_to_id",
    "is_edited",
    "is_deleted",
    "metadata",
    "created_at",
    "updated_at",
    "version",
)
CONTACT_COLUMNS = ("id", "name", "phone", "email", "username", "avatar_url", "notes")
CHANNEL_COLUMNS = ("id", "kind", "name", "address", "is_active")
CONVERSATION_COLUMNS = (
    "id",
    "external_id",
    "subject",
    "status",
    "snoozed_until",
    "assignee_id",
    "team_id",
    "is_archived",
    "unread_count",
    "last_message_at",
    "last_inbound_at",
    "last_message_preview",
    "created_at",
    "version",
)


def _columns(instance, columns, prefix: str = "") -> dict:
    return {prefix + column: getattr(instance, column) for column in columns}


def attachment_row_payload(row: dict) -> dict:
    """`row`: the ATTACHMENT_COLUMNS of an attachment."""
    return {
        "id": row["id"],
        "filename": row["filename"],
        "mime_type": row["mime_type"],
        "size": row["size"],
        "width": row["width"],
        "height": row["height"],
        "duration_ms": row["duration_ms"],
        # "failed": the media could not be fetched yet; the page shows a retry placeholder.
        "download_state": row["download_state"],
        "download_error": row["download_error"],
        "url": attachment_url(Attachment(id=row["id"])),
        # A PNG preview (a PDF's first page), once the worker has rendered it.
        "thumbnail_url": attachment_url(Attachment(id=row["id"])) + "?variant=thumbnail"
        if row["thumbnail"]
        else None,
    }


def attachment_payload(attachment: Attachment) -> dict:
    return attachment_row_payload(_columns(attachment, ATTACHMENT_COLUMNS))


def message_row_payload(row: dict) -> dict:
    """`row`: the MESSAGE_COLUMNS, `sender_name` ("" without a sending user) and
    `attachments`, a list of attachment rows."""
    return {
        "id": row["id"],
        "conversation_id": row["conversation_id"],
        "direction": row["direction"],
        "kind": row["kind"],
        "content": row["content"],
        "status": row["status"],
        "failure_reason": row["failure_reason"],
        "client_id": row["client_id"],
        "external_id": row["external_id"],
        "sender_name": row["sender_name"],
        "reply_to_id": row["reply_to_id"],
        "is_edited": row["is_edited"],
        "is_deleted": row["is_deleted"],
        "metadata": row["metadata"],
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        "version": row["version"],
        "attachments": [attachment_row_payload(a) for a in row["attachments"]],
    }


def message_payload(message: Message) -> dict:
    row = _columns(message, MESSAGE_COLUMNS)
    row["sender_name"] = _user_name(message.sender_user) if message.sender_user_id else ""
    row["attachments"] = [_columns(a, ATTACHMENT_COLUMNS) for a in message.loaded_attachments()]
    return message_row_payload(row)


def channel_row_payload(row: dict, prefix: str = "") -> dict:
    """`row`: the CHANNEL_COLUMNS, each key after `prefix`."""
    return {
        "id": row[prefix + "id"],
        "kind": row[prefix + "kind"],
        "name": row[prefix + "name"],
        "address": row[prefix + "address"],
        "is_active": row[prefix + "is_active"],
    }


def channel_payload(channel: Channel) -> dict:
    return channel_row_payload(_columns(channel, CHANNEL_COLUMNS))


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


def contact_row_payload(row: dict, prefix: str = "") -> dict:
    """`row`: the CONTACT_COLUMNS, each key after `prefix`."""
    return {
        "id": row[prefix + "id"],
        "name": row[prefix + "name"],
        "phone": row[prefix + "phone"],
        "email": row[prefix + "email"],
        "username": row[prefix + "username"],
        "avatar_url": row[prefix + "avatar_url"],
        "notes": row[prefix + "notes"],
    }


def contact_payload(contact: Contact, *, with_orders: bool = False) -> dict:
    payload = contact_row_payload(_columns(contact, CONTACT_COLUMNS))
    if with_orders:
        payload["orders"] = [order_payload(o) for o in contact.orders.all()]
    return payload


def conversation_row_payload(row: dict) -> dict:
    """A row of the inbox list. `row`: the CONVERSATION_COLUMNS, `assignee_name` (any value
    when there is no assignee), and the contact's and the channel's columns prefixed
    `contact__` and `channel__`."""
    assignee = None
    if row["assignee_id"] is not None:
        assignee = {"id": row["assignee_id"], "name": row["assignee_name"]}
    return {
        "id": row["id"],
        "external_id": row["external_id"],
        "subject": row["subject"],
        "status": row["status"],
        "snoozed_until": _time(row["snoozed_until"]),
        "assignee": assignee,
        "team_id": row["team_id"],
        "is_archived": row["is_archived"],
        "unread_count": row["unread_count"],
        "last_message_at": _time(row["last_message_at"]),
        "last_inbound_at": _time(row["last_inbound_at"]),
        "last_message_preview": row["last_message_preview"],
        "created_at": _time(row["created_at"]),
        "version": row["version"],
        "contact": contact_row_payload(row, "contact__"),
        "channel": channel_row_payload(row, "channel__"),
    }


def conversation_payload(conversation: Conversation, *, with_orders: bool = False) -> dict:
    """Contact, channel and assignee come from select_related."""
    row = _columns(conversation, CONVERSATION_COLUMNS)
    if conversation.assignee_id is not None:
        row["assignee_name"] = _user_name(conversation.assignee)
    row |= _columns(conversation.contact, CONTACT_COLUMNS, "contact__")
    row |= _columns(conversation.channel, CHANNEL_COLUMNS, "channel__")
    payload = conversation_row_payload(row)
    if with_orders:
        payload["contact"] = contact_payload(conversation.contact, with_orders=True)
    return payload


class _PayloadSerializer(serializers.ModelSerializer):
    """Declares fields for the schema; output comes from the payload function."""

    payload = staticmethod(lambda instance: {})

    def to_representation(self, instance):
        return type(self).payload(instance)


class AttachmentSerializer(_PayloadSerializer):
    payload = staticmethod(attachment_payload)
    url = serializers.CharField(read_only=True, help_text="signed, expiring media link")
    thumbnail_url = serializers.CharField(
        read_only=True, allow_null=True, help_text="a PNG preview (a PDF's first page), or null"
    )

    class Meta:
        model = Attachment
        fields = [
            "id",
            "filename",
            "mime_type",
            "size",
            "width",
            "height",
            "duration_ms",
            "download_state",
            "download_error",
            "url",
            "thumbnail_url",
        ]


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
            "version",
            "attachments",
        ]


class ChannelSerializer(_PayloadSerializer):
    payload = staticmethod(channel_payload)

    class Meta:
        model = Channel
        fields = ["id", "kind", "name", "address", "is_active"]


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
            "version",
            "contact",
            "channel",
        ]


def conversation_detail_payload(conversation: Conversation) -> dict:
    from .providers import reply_unavailable_reason

    payload = conversation_payload(conversation, with_orders=True)
    payload["reply_unavailable"] = reply_unavailable_reason(conversation.channel, conversation)
    return payload


class ConversationDetailSerializer(ConversationSerializer):
    """The thread header and the customer's card in one response: contact with orders."""

    payload = staticmethod(conversation_detail_payload)

    contact = ContactWithOrdersSerializer(read_only=True)
    reply_unavailable = serializers.CharField(
        read_only=True,
        help_text="why replies cannot be sent on this channel yet; empty when they can",
    )

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "reply_unavailable"]


class ConversationUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)
    assignee_id = serializers.IntegerField(required=False, allow_null=True)
    team_id = serializers.IntegerField(required=False, allow_null=True)
    is_archived = serializers.BooleanField(required=False)


class BulkConversationUpdateSerializer(serializers.Serializer):
    """One change for many conversations: all applied, or none (a 400 names the problem)."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=100
    )
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)
    assignee_id = serializers.IntegerField(required=False, allow_null=True)
    team_id = serializers.IntegerField(required=False, allow_null=True)

    def validate(self, data):
        if set(data) == {"ids"}:
            raise serializers.ValidationError(
                {"detail": "name a change: assignee_id, team_id, status or snoozed_until"}
            )
        return data


class BulkConversationResultSerializer(serializers.Serializer):
    results = ConversationSerializer(many=True)


class AvailabilitySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["online", "busy", "offline"],
        help_text="online: takes auto-assigned conversations; busy and offline: does not",
    )
    set_automatically = serializers.BooleanField(
        read_only=True, help_text="offline because every inbox page was closed for a while"
    )
    max_open_conversations = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="own cap; null: the team's default"
    )
    last_socket_at = serializers.DateTimeField(read_only=True, allow_null=True)


class EmailRecipientsSerializer(serializers.Serializer):
    to = serializers.ListField(child=serializers.EmailField(), min_length=1, max_length=20)
    cc = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=20
    )


class SendMessageSerializer(serializers.Serializer):
    client_id = serializers.CharField(max_length=64)
    email = EmailRecipientsSerializer(
        required=False,
        help_text="email conversations only: who the reply goes to (default: the customer)",
    )
    content = serializers.CharField(allow_blank=True, required=False, default="", max_length=20000)
    kind = serializers.ChoiceField(
        choices=[Message.Kind.TEXT, Message.Kind.NOTE], default=Message.Kind.TEXT
    )
    reply_to_id = serializers.IntegerField(required=False, allow_null=True)
