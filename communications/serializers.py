"""The one JSON shape of each object, used by the API, the pages and realtime events alike.

The shapes are built by plain functions (`message_payload`, `conversation_payload`, …): the
ingest path serialises two payloads per message and the inbox list up to a hundred rows, and
DRF's field machinery costs milliseconds per object. The DRF classes below declare the same
fields for validation of input and for the OpenAPI schema, and delegate their output to these
functions; tests/spine/test_payloads.py keeps the two in step.
"""

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.models import Contact, CustomAttributeDefinition, Order

from .media import attachment_url, avatar_url
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
CONTACT_COLUMNS = ("id", "name", "phone", "email", "username", "avatar_url", "avatar", "notes")
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
    "merged_into_id",
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
        # Our copy of the platform's picture when we have one (served with the contact's
        # permission), else what the platform or the API channel named.
        "avatar_url": avatar_url(row[prefix + "id"], row[prefix + "avatar"])
        or row[prefix + "avatar_url"],
        "notes": row[prefix + "notes"],
    }


def contact_payload(contact: Contact, *, with_orders: bool = False) -> dict:
    payload = contact_row_payload(_columns(contact, CONTACT_COLUMNS))
    if with_orders:
        payload["orders"] = [order_payload(o) for o in contact.orders.all()]
        payload |= contact_card_fields(contact)
    return payload


def contact_card_fields(contact: Contact) -> dict:
    """What the customer's card and the contacts page show beyond the row: labels and the
    custom attributes (every definition, in order, with the contact's value or null)."""
    return {
        "labels": [label_payload(label) for label in _contact_labels(contact)],
        "custom_attributes": custom_attributes_payload(
            contact.custom_attributes, _attribute_definitions(contact)
        ),
    }


def contact_detail_payload(contact: Contact) -> dict:
    """The contacts page's contact (selectors.contact_with_details): the card's fields, every
    conversation the user may see across channels, and the private notes on them."""
    return contact_payload(contact, with_orders=True) | {
        "created_at": _time(contact.created_at),
        "conversations": [conversation_row_payload(row) for row in contact._conversation_rows],
        "notes": [
            {
                "id": row["id"],
                "conversation_id": row["conversation_id"],
                "content": row["content"],
                "created_at": _time(row["created_at"]),
                "author": display_name(
                    row["sender_user__first_name"] or "",
                    row["sender_user__last_name"] or "",
                    row["sender_user__username"] or "",
                ),
            }
            for row in contact._note_rows
        ],
    }


def custom_attributes_payload(values: dict, definitions: list[dict]) -> list[dict]:
    """`definitions`: dicts of key, name, type, options (position order)."""
    values = values if isinstance(values, dict) else {}
    return [
        {
            "key": d["key"],
            "name": d["name"],
            "type": d["type"],
            "options": d["options"] if d["type"] == "list" else [],
            "value": values.get(d["key"]),
        }
        for d in definitions
    ]


ATTRIBUTE_DEFINITION_COLUMNS = ("key", "name", "type", "options", "position", "id")


def _attribute_definitions(contact: Contact) -> list[dict]:
    """Loaded by the caller (`contact._attribute_definitions`, e.g. from a JSON subquery of
    the contact's own query), else read here in one query."""
    loaded = getattr(contact, "_attribute_definitions", None)
    if loaded is None:
        loaded = list(CustomAttributeDefinition.objects.values(*ATTRIBUTE_DEFINITION_COLUMNS))
        contact._attribute_definitions = loaded
    return sorted(loaded, key=lambda d: (d["position"], d["id"]))


def _contact_labels(contact: Contact) -> list:
    loaded = getattr(contact, "_loaded_labels", None)
    if loaded is None:
        loaded = list(contact.labels.order_by("name"))
    return loaded


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
        "merged_into_id": row["merged_into_id"],
        "contact": contact_row_payload(row, "contact__"),
        "channel": channel_row_payload(row, "channel__"),
    } | ({"labels": row["labels"]} if "labels" in row else {})


def conversation_payload(conversation: Conversation, *, with_orders: bool = False) -> dict:
    """Contact, channel and assignee come from select_related."""
    row = _columns(conversation, CONVERSATION_COLUMNS)
    if conversation.assignee_id is not None:
        row["assignee_name"] = _user_name(conversation.assignee)
    row |= _columns(conversation.contact, CONTACT_COLUMNS, "contact__")
    row |= _columns(conversation.channel, CHANNEL_COLUMNS, "channel__")
    # Labels only when loaded (services/labels.load_labels): the ingest path's events leave
    # them out, and a page keeps the labels it has for a payload without the key.
    if hasattr(conversation, "_loaded_labels"):
        row["labels"] = [label_payload(label) for label in conversation._loaded_labels]
    payload = conversation_row_payload(row)
    if with_orders:
        payload["contact"] = contact_payload(conversation.contact, with_orders=True)
    return payload


# --- team workflow: labels, activity, mentions, canned responses ----------------------------


class _TextOnly:
    """A text field that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TextField(_TextOnly, serializers.CharField):
    pass


class SlugTextField(_TextOnly, serializers.SlugField):
    pass


def label_payload(label) -> dict:
    return {"id": label.pk, "name": label.name, "color": label.color}


def activity_text(row: dict) -> str:
    """The line a person reads: "Dana assigned this to Sam" (the page adds the time)."""
    who = row["actor_name"] or "Switchboard"
    verb, before, after = row["verb"], row["before"] or {}, row["after"] or {}
    if verb == "status":
        status = after.get("status")
        if status == "resolved":
            return f"{who} resolved this"
        if status == "open" and before.get("status") in ("resolved", "snoozed", "pending"):
            return f"{who} reopened this"
        return f"{who} set the status to {status}"
    if verb == "snoozed":
        until = after.get("snoozed_until") or ""
        return f"{who} snoozed this until {until[:16].replace('T', ' ')} UTC".rstrip()
    if verb == "assigned":
        new, old = after.get("assignee"), before.get("assignee")
        if new is None:
            return f"{who} unassigned {old['name']}" if old else f"{who} unassigned this"
        if row.get("actor_id") is not None and new.get("id") == row.get("actor_id"):
            return f"{who} self-assigned this"
        return f"{who} assigned this to {new['name']}"
    if verb == "team":
        new = after.get("team")
        return f"{who} moved this to team {new['name']}" if new else f"{who} removed the team"
    if verb == "archived":
        return f"{who} archived this" if after.get("is_archived") else f"{who} unarchived this"
    if verb in ("merged", "unmerged", "split"):
        return _merge_text(who, verb, row.get("conversation_id"), before, after)
    if verb in ("created", "changed"):
        subject = f"{row.get('subject_type') or 'object'} {row.get('subject_repr') or ''}".strip()
        if verb == "created":
            return f"{who} created {subject}"
        fields = sorted({*after, *before} - {"secrets_changed"})
        secrets = after.get("secrets_changed") or []
        said = ", ".join(fields + [f"secret {key}" for key in secrets])
        return f"{who} changed {subject}: {said}" if said else f"{who} changed {subject}"
    if verb == "login":
        return f"{who} signed in from {after.get('address') or 'an unknown address'}"
    if verb == "login_failed":
        return (
            f"Failed sign-in as {after.get('username') or '(blank)'} "
            f"from {after.get('address') or 'an unknown address'}"
        )
    if verb == "labels":
        old = {label["id"]: label["name"] for label in before.get("labels", [])}
        new = {label["id"]: label["name"] for label in after.get("labels", [])}
        added = [new[i] for i in new if i not in old]
        removed = [old[i] for i in old if i not in new]
        parts = []
        if added:
            parts.append(f"added {_plural('label', added)} {', '.join(added)}")
        if removed:
            parts.append(f"removed {_plural('label', removed)} {', '.join(removed)}")
        return f"{who} {' and '.join(parts) or 'changed the labels'}"
    return f"{who} changed this"


def _merge_text(who: str, verb: str, here, before: dict, after: dict) -> str:
    """Merge lines (communications/services/merge.py), read in the thread they are in."""
    if verb == "split":
        new = after.get("conversation")
        if here == new:
            return f"{who} split this from #{before.get('from')}"
        return f"{who} split {after.get('messages')} message(s) off into #{new}"
    if "contact" in before or "into_contact" in before:  # a contact merge
        if verb == "merged":
            into = after.get("into_contact") or {}
            return f"{who} merged contact {before['contact'].get('name')} into {into.get('name')}"
        back = after.get("contact") or {}
        return f"{who} undid the merge of contact {back.get('name')}"
    if verb == "merged":
        source = before.get("conversation") or {}
        if here == after.get("into"):
            return f"{who} merged #{source.get('id')} ({source.get('channel')}) into this"
        return f"{who} merged this into #{after.get('into')}"
    source = after.get("conversation") or {}
    if here == before.get("into"):
        return f"{who} undid the merge of #{source.get('id')} into this"
    return f"{who} undid the merge of this into #{before.get('into')}"


def _plural(word: str, items: list) -> str:
    return word if len(items) == 1 else f"{word}s"


ACTIVITY_COLUMNS = (
    "id",
    "conversation_id",
    "actor_id",
    "actor_name",
    "verb",
    "before",
    "after",
    "created_at",
    "subject_type",
    "subject_repr",
)


def activity_row_payload(row: dict) -> dict:
    return {
        "id": row["id"],
        "conversation_id": row["conversation_id"],
        "actor": {"id": row["actor_id"], "name": row["actor_name"]}
        if row["actor_id"] is not None
        else None,
        "verb": row["verb"],
        "before": row["before"],
        "after": row["after"],
        "text": activity_text(row),
        "created_at": _time(row["created_at"]),
    }


def activity_payload(activity) -> dict:
    return activity_row_payload(_columns(activity, ACTIVITY_COLUMNS))


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = TextField(max_length=50)
    color = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$",
        required=False,
        help_text="#RRGGBB; a colour from the palette when left out",
        error_messages={"invalid": "must be a colour as #RRGGBB, e.g. #2563eb"},
    )

    def to_representation(self, instance):
        return label_payload(instance)


class LabelChangeSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=50
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=50
    )


class BulkLabelChangeSerializer(LabelChangeSerializer):
    conversation_ids = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=100
    )


class ActivityActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    actor = ActivityActorSerializer(allow_null=True, help_text="null: done by the system")
    verb = serializers.ChoiceField(
        choices=[
            "status",
            "snoozed",
            "assigned",
            "team",
            "archived",
            "labels",
            "merged",
            "unmerged",
            "split",
        ]
    )
    before = serializers.DictField(help_text="the changed fields before (names included)")
    after = serializers.DictField(help_text="the changed fields after")
    text = serializers.CharField(help_text='the line as the thread shows it: "Dana resolved this"')
    created_at = serializers.DateTimeField()


class LabelPayloadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()


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
    avatar_url = serializers.CharField(
        read_only=True,
        help_text="our stored copy of the platform's picture (a path on this server, "
        "`/media/avatars/…`, for the contact's managers only), else the URL the platform or "
        "the API channel named, else empty",
    )

    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "email", "username", "avatar_url", "notes"]


class CustomAttributeValueSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["text", "number", "date", "list"])
    options = serializers.ListField(
        child=serializers.CharField(), help_text="a list attribute's allowed values"
    )
    value = serializers.JSONField(
        allow_null=True,
        help_text="text, a number, a date (YYYY-MM-DD) or one of the options; null when unset",
    )


class ContactWithOrdersSerializer(ContactSerializer):
    payload = staticmethod(lambda contact: contact_payload(contact, with_orders=True))
    orders = OrderSerializer(many=True, read_only=True)
    labels = LabelPayloadSerializer(many=True, read_only=True)
    custom_attributes = CustomAttributeValueSerializer(
        many=True,
        read_only=True,
        help_text="every attribute staff defined (admin → Custom attribute definitions), in "
        "order, with this contact's value",
    )

    class Meta(ContactSerializer.Meta):
        fields = ContactSerializer.Meta.fields + ["orders", "labels", "custom_attributes"]


class ContactNoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    content = serializers.CharField()
    created_at = serializers.DateTimeField()
    author = serializers.CharField()


class ContactUpdateSerializer(serializers.Serializer):
    """Documents PATCH /api/v1/contacts/<id>/ (the service validates: every problem named)."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    notes = serializers.CharField(
        required=False, allow_blank=True, max_length=5000, help_text="the contact note"
    )
    custom_attributes = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="{key: value}: only the keys given change; null or empty removes a value",
    )


class AssigneeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ConversationSerializer(_PayloadSerializer):
    """A row of the inbox list."""

    payload = staticmethod(conversation_payload)

    contact = ContactSerializer(read_only=True)
    channel = ChannelSerializer(read_only=True)
    assignee = AssigneeSerializer(read_only=True, allow_null=True)
    merged_into_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="set when this conversation was merged into that one (it is archived; its "
        "messages are there now)",
    )
    labels = serializers.SerializerMethodField(
        help_text="[{id, name, color}] by name. Realtime events from new messages leave the "
        "key out: the labels did not change"
    )

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
            "merged_into_id",
            "contact",
            "channel",
            "labels",
        ]

    @extend_schema_field(LabelPayloadSerializer(many=True))
    def get_labels(self, instance):  # output comes from the payload function
        return []


def conversation_detail_payload(conversation: Conversation) -> dict:
    from .providers import reply_options

    payload = conversation_payload(conversation, with_orders=True)
    options = reply_options(conversation.channel, conversation)
    payload["reply_unavailable"] = options.reason
    payload["reply_mode"] = options.mode
    payload["activity"] = [
        activity_payload(a) for a in getattr(conversation, "_recent_activity", [])
    ]
    return payload


class ConversationDetailSerializer(ConversationSerializer):
    """The thread header and the customer's card in one response: contact with orders."""

    payload = staticmethod(conversation_detail_payload)

    contact = ContactWithOrdersSerializer(read_only=True)
    reply_unavailable = serializers.CharField(
        read_only=True,
        help_text="why free-text replies cannot be sent here now; empty when they can",
    )
    reply_mode = serializers.ChoiceField(
        choices=["text", "templates", "notes"],
        read_only=True,
        help_text="what the reply box offers: free text, only approved message templates "
        "(WhatsApp outside its 24-hour window: GET …/templates/), or private notes only",
    )
    activity = serializers.SerializerMethodField(
        help_text="the newest activity lines (up to 100, newest first); all of them: "
        "GET …/activity/"
    )

    class Meta(ConversationSerializer.Meta):
        fields = [
            *ConversationSerializer.Meta.fields,
            "reply_unavailable",
            "reply_mode",
            "activity",
        ]

    @extend_schema_field(ActivitySerializer(many=True))
    def get_activity(self, instance):  # output comes from the payload function
        return []


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


class TemplateSendSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="a template's id from GET …/templates/"
    )
    variables = serializers.DictField(
        child=serializers.CharField(max_length=1024, allow_blank=True),
        required=False,
        default=dict,
        help_text='each of the template\'s `fields` by its key: {"body.1": "Ann"}',
    )


class TemplateFieldSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="header.<var>, header.link, body.<var>, button.<i>.<var>")
    label = serializers.CharField()


class TemplateSerializer(serializers.Serializer):
    """An approved message template as the reply box shows it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    language = serializers.CharField()
    category = serializers.CharField()
    header = serializers.CharField(help_text="its text with {{variables}}, or [image] etc.")
    body = serializers.CharField()
    footer = serializers.CharField()
    buttons = serializers.ListField(child=serializers.CharField())
    fields = TemplateFieldSerializer(many=True, help_text="what the manager fills in")


class SendMessageSerializer(serializers.Serializer):
    client_id = serializers.CharField(max_length=64)
    template = TemplateSendSerializer(
        required=False,
        help_text="send a message template instead of text (WhatsApp, when reply_mode is "
        "`templates`); the stored message shows the filled-in text",
    )
    email = EmailRecipientsSerializer(
        required=False,
        help_text="email conversations only: who the reply goes to (default: the customer)",
    )
    content = serializers.CharField(allow_blank=True, required=False, default="", max_length=20000)
    kind = serializers.ChoiceField(
        choices=[Message.Kind.TEXT, Message.Kind.NOTE], default=Message.Kind.TEXT
    )
    reply_to_id = serializers.IntegerField(required=False, allow_null=True)


class MentionConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contact_name = serializers.CharField()
    channel_id = serializers.IntegerField()


class MentionMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    content = serializers.CharField(help_text="the private note's text")
    sender_name = serializers.CharField()
    created_at = serializers.DateTimeField()


class MentionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    conversation = MentionConversationSerializer()
    message = MentionMessageSerializer()


class MentionReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=500,
        help_text="these mentions; with neither field: all of the caller's",
    )
    conversation_id = serializers.IntegerField(
        required=False, help_text="every mention of the caller in this conversation"
    )


class MentionableSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(help_text="write `@username` in a note to mention them")
    name = serializers.CharField()


def canned_payload(canned, rendered: str | None = None) -> dict:
    payload = {
        "id": canned.pk,
        "shortcut": canned.shortcut,
        "title": canned.title,
        "content": canned.content,
        "scope": "team" if canned.team_id else "personal",
        "team": {"id": canned.team_id, "name": canned.team.name} if canned.team_id else None,
    }
    payload["rendered"] = rendered
    return payload


class CannedTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CannedResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    shortcut = SlugTextField(max_length=50)
    title = TextField(max_length=120, required=False, allow_blank=True, default="")
    content = TextField(
        max_length=5000,
        help_text="placeholders: {{contact.name}}, {{contact.first_name}}, {{agent.name}}, "
        "{{conversation.id}}; any other is a 400 naming it",
    )
    scope = serializers.ChoiceField(
        choices=["personal", "team"], default="personal", help_text="team: every member sees it"
    )
    team_id = serializers.IntegerField(
        required=False, allow_null=True, write_only=True, help_text="required for scope team"
    )
    team = CannedTeamSerializer(read_only=True, allow_null=True)
    rendered = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="with ?conversation=<id>: the text with its placeholders filled in; else null",
    )


class CannedResponseUpdateSerializer(serializers.Serializer):
    shortcut = SlugTextField(max_length=50, required=False)
    title = TextField(max_length=120, required=False, allow_blank=True)
    content = TextField(max_length=5000, required=False)


class ContactDetailSerializer(ContactWithOrdersSerializer):
    """The contacts page's contact: the card's fields, every conversation across channels the
    caller may see (newest first, up to 100) and the newest private notes on them (up to 50)."""

    payload = staticmethod(contact_detail_payload)
    created_at = serializers.DateTimeField(read_only=True)
    conversations = ConversationSerializer(many=True, read_only=True)
    notes = ContactNoteSerializer(many=True, read_only=True)

    class Meta(ContactWithOrdersSerializer.Meta):
        fields = ContactWithOrdersSerializer.Meta.fields + ["created_at", "conversations", "notes"]
