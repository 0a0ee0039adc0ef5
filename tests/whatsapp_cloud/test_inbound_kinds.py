"""Inbound message kinds beyond text and media, each from a payload shaped like Meta's webhook
reference: location, contacts, interactive replies (button / list), template quick-reply
buttons, reactions (shown on the message they name, never a message of their own); and media
whose download fails transiently is retried until it is stored, never lost."""

import json

import pytest
from werkzeug import Response

from communications.models import Attachment, Message
from tests import factories

from .conftest import ACCESS_TOKEN, fixture_bytes, post_signed

pytestmark = pytest.mark.django_db

OUT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"


def deliver(client, channel, fixture: str, captured):
    with captured(execute=True):
        response = post_signed(client, channel, fixture_bytes(fixture))
    assert response.status_code == 200, response.content


@pytest.fixture
def our_message(wa_channel):
    """The business's message the customer answers or reacts to."""
    conversation = factories.ConversationFactory(channel=wa_channel, external_id="16505551234")
    return factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.DELIVERED,
        external_id=OUT_WAMID,
        content="Your order has shipped",
    )


def test_a_location_is_stored_with_its_place_and_coordinates(
    client, wa_channel, django_capture_on_commit_callbacks
):
    deliver(client, wa_channel, "location_message.json", django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert message.kind == Message.Kind.LOCATION
    assert message.content == (
        "Main Street Beach, 1 Hacker Way, Menlo Park, CA 94025 "
        "(37.483253479003906, -122.14825439453125)"
    )
    assert message.metadata["location"]["name"] == "Main Street Beach"


def test_shared_contacts_are_readable_text_with_the_card_kept(
    client, wa_channel, django_capture_on_commit_callbacks
):
    deliver(client, wa_channel, "contacts_message.json", django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert message.content == "Contact: Barbara J. Johnson · +1 (940) 555-1234"
    assert message.metadata["contacts"][0]["phones"][0]["wa_id"] == "19405551234"


@pytest.mark.parametrize(
    ("fixture", "content", "reply_id"),
    [
        ("interactive_button_reply.json", "Change", "change-button"),
        (
            "interactive_list_reply.json",
            "Priority Mail Express — Next Day to 2 Days",
            "priority_express",
        ),
    ],
)
def test_interactive_replies_are_text_answering_our_message(
    client, wa_channel, our_message, django_capture_on_commit_callbacks, fixture, content, reply_id
):
    deliver(client, wa_channel, fixture, django_capture_on_commit_callbacks)
    reply = Message.objects.get(direction=Message.Direction.INBOUND)
    assert (reply.kind, reply.content) == (Message.Kind.TEXT, content)
    assert reply.metadata["reply_id"] == reply_id
    assert reply.reply_to_id == our_message.pk
    assert reply.conversation_id == our_message.conversation_id


def test_a_template_quick_reply_button_is_text_with_its_payload(
    client, wa_channel, our_message, django_capture_on_commit_callbacks
):
    deliver(client, wa_channel, "button_message.json", django_capture_on_commit_callbacks)
    reply = Message.objects.get(direction=Message.Direction.INBOUND)
    assert reply.content == "Stop promotions"
    assert reply.metadata["button_payload"] == "stop-promotions"
    assert reply.reply_to_id == our_message.pk


def test_a_reaction_shows_on_the_message_it_names_and_creates_none(
    client, wa_channel, our_message, django_capture_on_commit_callbacks
):
    deliver(client, wa_channel, "reaction_message.json", django_capture_on_commit_callbacks)
    assert Message.objects.count() == 1
    our_message.refresh_from_db()
    assert our_message.metadata["reactions"] == {
        "16505551234": {"key": "👍", "event_id": "wamid.REACTION1"}
    }
    version = our_message.version
    # Redelivered: nothing changes, no second event.
    deliver(client, wa_channel, "reaction_message.json", django_capture_on_commit_callbacks)
    our_message.refresh_from_db()
    assert our_message.version == version

    # Taken back: WhatsApp sends the reaction without an emoji.
    deliver(client, wa_channel, "reaction_removed.json", django_capture_on_commit_callbacks)
    our_message.refresh_from_db()
    assert our_message.metadata["reactions"] == {}
    assert Message.objects.count() == 1


def test_a_reaction_to_a_message_we_do_not_have_changes_nothing(
    client, wa_channel, django_capture_on_commit_callbacks
):
    deliver(client, wa_channel, "reaction_message.json", django_capture_on_commit_callbacks)
    assert Message.objects.count() == 0


def test_media_that_fails_twice_is_retried_until_stored(
    client, hs_channel, httpserver, django_capture_on_commit_callbacks, settings, tmp_path
):
    """Chatwoot #15754 loses such media forever: here the placeholder is retried (automatic
    retries run at once with eager tasks) and filled in when Graph answers again."""
    settings.MEDIA_ROOT = tmp_path
    jpeg = b"\xff\xd8\xff\xe0" + b"tennis-shoes" * 50
    lookups = iter(
        [
            Response('{"error":{"code":2,"message":"Service temporarily unavailable"}}', 503),
            Response('{"error":{"code":1,"message":"An unknown error occurred"}}', 500),
            Response(
                json.dumps(
                    {
                        "messaging_product": "whatsapp",
                        "url": httpserver.url_for("/whatsapp_business/attachments/?mid=1003"),
                        "mime_type": "image/jpeg",
                        "sha256": "SfInY0gGd3ZJQ7cKIDf7GBBGYDY9Yb3M4rLHc9k0bsM=",
                        "file_size": len(jpeg),
                        "id": "1003383421387256",
                    }
                ),
                200,
                mimetype="application/json",
            ),
        ]
    )
    httpserver.expect_request("/v21.0/1003383421387256", method="GET").respond_with_handler(
        lambda request: next(lookups)
    )
    httpserver.expect_request("/whatsapp_business/attachments/", method="GET").respond_with_data(
        jpeg, content_type="image/jpeg"
    )
    deliver(client, hs_channel, "image_message.json", django_capture_on_commit_callbacks)

    message = Message.objects.get()
    assert (message.kind, message.content) == (Message.Kind.IMAGE, "New Tennis Shoes")
    attachment = Attachment.objects.get()
    assert attachment.download_state == Attachment.DownloadState.STORED
    assert attachment.download_error == ""
    assert attachment.download_attempts == 2  # two failed tries before this one
    with attachment.file.open("rb") as stored:
        assert stored.read() == jpeg
    paths = [request.path for request, _ in httpserver.log]
    assert paths == [
        "/v21.0/1003383421387256",
        "/v21.0/1003383421387256",
        "/v21.0/1003383421387256",
        "/whatsapp_business/attachments/",
    ]
    assert all(
        request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        for request, _ in httpserver.log
    )
