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
    conversation_payload,
    message_payload,
)
from tests import factories

pytestmark = pytest.mark.django_db


def declared(serializer_class) -> set[str]:
    return set(serializer_class.Meta.fields)


def test_conversation_payload_matches_its_schema(manager):
    conversation = factories.ConversationFactory(assignee=manager)
    factories.OrderFactory(contact=conversation.contact)
    payload = conversation_payload(conversation, with_orders=True)
    assert (
        set(payload) == declared(ConversationSerializer) == declared(ConversationDetailSerializer)
    )
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
