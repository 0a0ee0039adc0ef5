"""The Cloud API webhook: verification, signatures, ingest once, media, forward-only statuses."""

import json

import pytest

from communications.models import Attachment, Contact, Conversation, Message, WebhookDelivery
from tests import factories

from .conftest import VERIFY_TOKEN, fixture_bytes, post_signed

pytestmark = pytest.mark.django_db

TEXT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
OUT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"


def test_verification_answers_the_challenge_only_for_the_right_token(client, wa_channel):
    url = f"/webhooks/whatsapp/{wa_channel.pk}/"
    good = client.get(
        url,
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert good.status_code == 200
    assert good.content == b"1158201444"
    assert good["Content-Type"].startswith("text/plain")
    bad = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}
    )
    assert bad.status_code == 403 and b"1158201444" not in bad.content
    missing = client.get(url, {"hub.mode": "subscribe", "hub.challenge": "1158201444"})
    assert missing.status_code == 403


def test_other_channel_kinds_have_no_whatsapp_webhook(client, channel):
    assert client.get(f"/webhooks/whatsapp/{channel.pk}/").status_code == 404


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"])
def test_unsigned_or_badly_signed_posts_store_nothing(client, wa_channel, signature):
    response = post_signed(
        client, wa_channel, fixture_bytes("text_message.json"), signature=signature
    )
    assert response.status_code == 401
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0


def test_signature_is_checked_over_the_raw_body(client, wa_channel):
    raw = fixture_bytes("text_message.json")
    reserialised = json.dumps(json.loads(raw)).encode()
    assert reserialised != raw
    from integrations.whatsapp_cloud.webhook import signature_for

    from .conftest import APP_SECRET

    # Signed over one serialisation, sent with another: refused.
    response = post_signed(
        client, wa_channel, reserialised, signature=signature_for(APP_SECRET, raw)
    )
    assert response.status_code == 401
    assert Message.objects.count() == 0


def test_bad_json_is_a_400_naming_the_problem(client, wa_channel):
    response = post_signed(client, wa_channel, b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    response = post_signed(client, wa_channel, b'{"object": "whatsapp_business_account"}')
    assert response.status_code == 400
    assert "'entry' is a required property" in response.json()["detail"]


def test_signed_text_is_stored_once_even_when_redelivered(client, wa_channel):
    body = fixture_bytes("text_message.json")
    first = post_signed(client, wa_channel, body)
    assert first.status_code == 200, first.content
    assert first.json() == {"received": True, "duplicate": False}
    conversation = Conversation.objects.get()
    assert conversation.channel == wa_channel and conversation.external_id == "16505551234"
    contact = Contact.objects.get()
    assert contact.name == "Sheena Nelson" and contact.phone == "+16505551234"
    message = Message.objects.get()
    assert message.external_id == TEXT_WAMID
    assert message.content == "Does it come in another color?"
    assert message.direction == Message.Direction.INBOUND
    assert message.created_at.timestamp() == 1749416383
    assert conversation.last_inbound_at is not None

    again = post_signed(client, wa_channel, body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Message.objects.count() == 1
    verdicts = list(WebhookDelivery.objects.order_by("id").values_list("verdict", "outcome"))
    assert verdicts == [("accepted", "done"), ("duplicate", "skipped")]
    assert Conversation.objects.count() == 1 and Contact.objects.count() == 1


def test_reply_context_links_the_quoted_message(client, wa_channel):
    payload = json.loads(fixture_bytes("text_message.json"))
    first = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    second = {**first, "id": "wamid.SECOND", "context": {"from": "15550783881", "id": TEXT_WAMID}}
    payload["entry"][0]["changes"][0]["value"]["messages"] = [first, second]
    response = post_signed(client, wa_channel, json.dumps(payload).encode())
    assert response.status_code == 200
    assert Message.objects.filter(direction="in").count() == 2
    reply = Message.objects.get(external_id="wamid.SECOND")
    assert reply.reply_to.external_id == TEXT_WAMID


def test_changes_for_another_phone_number_are_skipped(client, wa_channel):
    payload = json.loads(fixture_bytes("text_message.json"))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    response = post_signed(client, wa_channel, json.dumps(payload).encode())
    assert response.status_code == 200
    assert Message.objects.count() == 0


def test_image_is_downloaded_and_stored_with_its_bytes(
    client, wa_channel, graph, django_capture_on_commit_callbacks
):
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes" * 10
    graph.media["1003383421387256"] = (jpeg, "image/jpeg")
    body = fixture_bytes("image_message.json")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, wa_channel, body)
    assert response.status_code == 200, response.content
    message = Message.objects.get()
    assert message.kind == Message.Kind.IMAGE and message.content == "New Tennis Shoes"
    attachment = Attachment.objects.get()
    assert attachment.mime_type == "image/jpeg" and attachment.size == len(jpeg)
    assert attachment.provider_ref == "1003383421387256"
    with attachment.file.open("rb") as stored:
        assert stored.read() == jpeg
    gets = [r for r in graph.requests if r["method"] == "GET"]
    assert [r["path"] for r in gets] == [
        "/v21.0/1003383421387256",
        "/media-bytes/1003383421387256",
    ]
    assert all(r["headers"]["Authorization"] == "Bearer EAAG-test-token" for r in gets)

    # Redelivered: nothing downloaded again, nothing stored twice.
    post_signed(client, wa_channel, body)
    assert len([r for r in graph.requests if r["method"] == "GET"]) == 2
    assert Message.objects.count() == 1 and Attachment.objects.count() == 1


def test_media_that_cannot_be_downloaded_still_stores_the_message(
    client, wa_channel, graph, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, wa_channel, fixture_bytes("image_message.json"))
    assert response.status_code == 200
    assert Message.objects.get().kind == Message.Kind.IMAGE
    attachment = Attachment.objects.get()
    assert attachment.provider_ref == "1003383421387256"
    # A placeholder, retried automatically (at once here: tests run tasks eagerly) until the
    # automatic attempts are spent; the inbox's retry button can still try again.
    assert attachment.download_state == Attachment.DownloadState.FAILED
    assert attachment.download_error == "media lookup: HTTP 404"
    assert attachment.download_attempts == 6
    assert not attachment.file


@pytest.fixture
def outbound(wa_channel):
    conversation = factories.ConversationFactory(channel=wa_channel, external_id="16505551234")
    return factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.SENT,
        external_id=OUT_WAMID,
    )


def test_statuses_only_move_forward(client, wa_channel, outbound):
    for name in ("status_delivered.json", "status_read.json", "status_delivered.json"):
        response = post_signed(client, wa_channel, fixture_bytes(name))
        assert response.status_code == 200
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.READ
    post_signed(client, wa_channel, fixture_bytes("status_sent.json"))
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.READ


def test_failed_status_records_metas_reason(client, wa_channel, outbound):
    response = post_signed(client, wa_channel, fixture_bytes("status_failed.json"))
    assert response.status_code == 200
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.FAILED
    assert "131026" in outbound.failure_reason
    assert "Message undeliverable" in outbound.failure_reason
    assert "not a WhatsApp phone number" in outbound.failure_reason
