"""The payload functions and the DRF classes that document them describe one shape."""

import pytest
from rest_framework.test import APIClient

from communications.serializers import (
    AttachmentSerializer,
    ContactWithOrdersSerializer,
    ConversationDetailSerializer,
    ConversationSerializer,
    MessageSerializer,
    OrderSerializer,
    conversation_detail_payload,
    conversation_payload,
    conversation_row_payload,
    message_payload,
    message_row_payload,
)
from communications.services.labels import load_labels
from tests import factories

pytestmark = pytest.mark.django_db


def declared(serializer_class) -> set[str]:
    return set(serializer_class.Meta.fields)


def test_conversation_payload_matches_its_schema(manager):
    conversation = factories.ConversationFactory(assignee=manager)
    factories.OrderFactory(contact=conversation.contact)
    assert "labels" not in conversation_payload(conversation)  # not loaded: left out (events)
    load_labels([conversation])
    assert set(conversation_payload(conversation)) == declared(ConversationSerializer)
    payload = conversation_detail_payload(conversation)
    assert set(payload) == declared(ConversationDetailSerializer)
    assert set(payload["contact"]) == declared(ContactWithOrdersSerializer)
    assert set(payload["contact"]["orders"][0]) == declared(OrderSerializer)
    assert payload["assignee"] == {"id": manager.pk, "name": manager.get_full_name()}
    assert payload["last_message_at"].endswith("Z")


def test_message_payload_matches_its_schema(settings, tmp_path):
    from communications.models import Attachment

    settings.MEDIA_ROOT = tmp_path
    message = factories.MessageFactory()
    Attachment.objects.create(message=message, mime_type="image/png", filename="a.png", size=3)
    payload = message_payload(message)
    assert set(payload) == declared(MessageSerializer)
    assert set(payload["attachments"][0]) == declared(AttachmentSerializer)


def test_schema_documents_the_payload_fields(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    schema = client.get("/api/schema/?format=json").json()
    properties = schema["components"]["schemas"]["Message"]["properties"]
    assert set(properties) == declared(MessageSerializer)


def test_rows_of_the_read_endpoints_give_the_payloads_of_the_models(
    api, manager, channel, settings, tmp_path
):
    """The API pages build payloads from `.values()` rows; the events and the other views from
    model instances. Both must give the very same JSON, key order included."""
    from unittest import mock

    from communications.models import Attachment, Conversation, Message
    from communications.selectors import conversation_page, message_page

    settings.MEDIA_ROOT = tmp_path
    conversation = factories.ConversationFactory(channel=channel, assignee=manager)
    factories.ConversationFactory(channel=channel, assignee=None, snoozed_until=None)
    with_sender = factories.MessageFactory(
        conversation=conversation, sender_user=manager, metadata={"a": [1, {"b": None}]}
    )
    factories.MessageFactory(conversation=conversation, sender_user=None)
    for n in range(2):
        Attachment.objects.create(
            message=with_sender, mime_type="image/png", filename=f"{n}.png", size=3, width=4
        )
    with mock.patch("django.core.signing.time.time", return_value=1_800_000_000):
        rows = message_page(conversation.pk, {}).items
        models = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id")
        assert [message_row_payload(r) for r in rows] == [message_payload(m) for m in models]
        assert [list(message_row_payload(r)) for r in rows] == [
            list(message_payload(m)) for m in models
        ]
    assert rows[-1]["attachments"] or rows[0]["attachments"]

    page = conversation_page(manager, {"page_size": "10"}).items
    assert len(page) == 2
    models = Conversation.objects.select_related("contact", "channel", "assignee").order_by(
        "-last_message_at", "-id"
    )
    load_labels(models := list(models))
    assert [conversation_row_payload(r) for r in page] == [conversation_payload(c) for c in models]
    assert [list(conversation_row_payload(r)) for r in page] == [
        list(conversation_payload(c)) for c in models
    ]
