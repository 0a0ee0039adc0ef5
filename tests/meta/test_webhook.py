"""The Messenger / Instagram webhook: verification, signatures, every inbound kind, stored once."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from communications import webhooks
from communications.models import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    Message,
    WebhookDelivery,
)
from integrations.meta_signature import signature_for
from tests import factories

from .conftest import (
    APP_SECRET,
    IG_ACCOUNT_ID,
    IGSID,
    PAGE_ID,
    PSID,
    VERIFY_TOKEN,
    fixture_bytes,
    post_signed,
)

pytestmark = pytest.mark.django_db

TEXT_MID = (
    "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
)


def test_verification_answers_the_challenge_only_for_the_right_token(client, messenger):
    url = f"/webhooks/meta/{messenger.pk}/"
    good = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8842"}
    )
    assert good.status_code == 200 and good.content == b"8842"
    assert good["Content-Type"].startswith("text/plain")
    bad = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "8842"}
    )
    assert bad.status_code == 403 and b"8842" not in bad.content
    assert client.get(url, {"hub.mode": "subscribe", "hub.challenge": "8842"}).status_code == 403


def test_only_messenger_and_instagram_channels_have_it(client, channel, instagram):
    assert client.get(f"/webhooks/meta/{channel.pk}/").status_code == 404
    assert (
        client.get(
            f"/webhooks/meta/{instagram.pk}/",
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        ).status_code
        == 200
    )


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"])
def test_missing_or_bad_signature_is_401_and_stores_nothing(client, messenger, signature):
    body = fixture_bytes("messenger_text.json")
    response = post_signed(client, messenger, body, signature=signature)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0
    assert list(WebhookDelivery.objects.values_list("verdict", "outcome")) == [
        ("bad_signature", "skipped")
    ]


def test_signature_is_over_the_raw_body(client, messenger):
    raw = fixture_bytes("messenger_text.json")
    reserialised = json.dumps(json.loads(raw)).encode()
    assert reserialised != raw
    response = post_signed(
        client, messenger, reserialised, signature=signature_for(APP_SECRET, raw)
    )
    assert response.status_code == 401
    assert Message.objects.count() == 0


def test_malformed_is_a_400_with_the_reason(client, messenger, instagram):
    response = post_signed(client, messenger, b"{nope")
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    response = post_signed(client, messenger, b'{"object": "page"}')
    assert response.status_code == 400
    assert "'entry' is a required property" in response.json()["detail"]
    # An Instagram delivery posted to a Messenger channel's URL.
    response = post_signed(client, messenger, fixture_bytes("instagram_text.json"))
    assert response.status_code == 400
    assert "expected 'page'" in response.json()["detail"]
    body = json.loads(fixture_bytes("messenger_text.json"))
    body["entry"][0]["messaging"][0]["message"]["mid"] = 5
    response = post_signed(client, messenger, json.dumps(body).encode())
    assert response.status_code == 400
    assert "entry[0].messaging[0].message.mid" in response.json()["detail"]
    assert Message.objects.count() == 0
    assert WebhookDelivery.objects.filter(verdict="malformed").count() == 4


def test_messenger_text_is_stored_once(client, messenger):
    body = fixture_bytes("messenger_text.json")
    response = post_signed(client, messenger, body)
    assert response.status_code == 200 and response.json() == {
        "received": True,
        "duplicate": False,
    }
    message = Message.objects.get()
    assert message.external_id == TEXT_MID
    assert message.content == "Hi! Is the blue jacket still in stock?"
    assert message.direction == Message.Direction.INBOUND
    assert message.created_at.timestamp() == 1749416383
    conversation = message.conversation
    assert conversation.external_id == PSID and conversation.last_inbound_at is not None
    assert conversation.contact.identities.get().external_id == PSID
    assert post_signed(client, messenger, body).json()["duplicate"] is True
    # The same mid in a different delivery (Meta's retry with a new entry time): still once.
    again = json.loads(body)
    again["entry"][0]["time"] += 1
    assert post_signed(client, messenger, json.dumps(again).encode()).status_code == 200
    assert Message.objects.count() == 1 and Contact.objects.count() == 1


def test_entries_for_another_page_are_skipped(client, messenger):
    body = json.loads(fixture_bytes("messenger_text.json"))
    body["entry"][0]["id"] = "999"
    assert post_signed(client, messenger, json.dumps(body).encode()).status_code == 200
    assert Message.objects.count() == 0


def test_attachments_are_stored_before_the_message_is_announced(
    client, messenger, graph, django_capture_on_commit_callbacks
):
    files = {
        "/cdn/photo.jpg": (b"\xff\xd8\xff\xe0jpeg" * 20, "image/jpeg"),
        "/cdn/clip.mp4": (b"\x00\x00\x00\x18ftypmp42" * 20, "video/mp4"),
        "/cdn/voice.mp4": (b"\x00\x00\x00\x18ftypM4A " * 20, "audio/mp4"),
        "/cdn/invoice.pdf": (b"%PDF-1.4 fake" * 20, "application/pdf"),
    }
    for path, (data, mime) in files.items():
        graph.expect_request(path).respond_with_data(data, content_type=mime)
    body = fixture_bytes("messenger_attachments.json", CDN=graph.url_for("").rstrip("/"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed(client, messenger, body).status_code == 200
    kinds = dict(Message.objects.values_list("external_id", "kind"))
    assert kinds == {"m_ATTACH1": "image", "m_AUDIO1": "audio", "m_FILE1": "file"}
    stored = {a.filename: a for a in Attachment.objects.all()}
    assert set(stored) == {"photo.jpg", "clip.mp4", "voice.mp4", "invoice.pdf"}
    for path, (data, mime) in files.items():
        attachment = stored[path.rsplit("/", 1)[-1]]
        assert attachment.mime_type == mime and attachment.size == len(data)
        assert attachment.download_state == Attachment.DownloadState.STORED
        with attachment.file.open("rb") as handle:
            assert handle.read() == data
    # Redelivered: nothing downloaded again.
    downloads = len(graph.log)
    post_signed(client, messenger, body.replace(b'"time": 1749416390000', b'"time": 1'))
    assert len(graph.log) == downloads and Attachment.objects.count() == 4


def test_an_attachment_that_cannot_be_downloaded_keeps_the_message(
    client, messenger, graph, django_capture_on_commit_callbacks
):
    body = fixture_bytes("messenger_attachments.json", CDN=graph.url_for("").rstrip("/"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed(client, messenger, body).status_code == 200
    assert Message.objects.count() == 3
    attachment = Attachment.objects.get(filename="photo.jpg")
    assert attachment.download_state == Attachment.DownloadState.FAILED
    assert attachment.download_error.startswith("media download: HTTP 500")
    assert attachment.provider_ref.endswith("/cdn/photo.jpg?_nc_cat=1&oh=abc")


def test_instagram_text_story_reply_and_mention(client, instagram):
    for name in (
        "instagram_text.json",
        "instagram_story_reply.json",
        "instagram_story_mention.json",
    ):
        assert post_signed(client, instagram, fixture_bytes(name)).status_code == 200
    assert Conversation.objects.get().external_id == IGSID
    text = Message.objects.get(content="Do you ship to Lisbon?")
    assert text.direction == "in"
    reply = Message.objects.get(external_id="ig_STORYREPLY1")
    assert reply.content.startswith("Love these colours!")
    assert "Replied to your story" in reply.content
    assert reply.metadata["story_reply"]["id"] == "17990000000000001"
    mention = Message.objects.get(external_id="ig_MENTION1")
    assert "Mentioned you in their story" in mention.content
    assert mention.metadata["story_mention"]["url"].endswith("asset_id=17990000000000002")
    # Meta's terms: a story mention's media is not stored.
    assert not Attachment.objects.exists()


def _outbound(channel, external_id="m_OUT1", status=Message.Status.SENT, chat=PSID):
    conversation = Conversation.objects.filter(channel=channel, external_id=chat).first()
    conversation = conversation or factories.ConversationFactory(channel=channel, external_id=chat)
    return factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        status=status,
        external_id=external_id,
    )


def test_reactions_are_applied_and_taken_back(client, messenger):
    outbound = _outbound(messenger)
    post_signed(
        client, messenger, fixture_bytes("messenger_reaction.json", MID="m_OUT1", ACTION="react")
    )
    outbound.refresh_from_db()
    assert outbound.metadata["reactions"][PSID]["key"] == "\u2764\ufe0f"
    post_signed(
        client, messenger, fixture_bytes("messenger_reaction.json", MID="m_OUT1", ACTION="unreact")
    )
    outbound.refresh_from_db()
    assert outbound.metadata["reactions"] == {}
    assert Message.objects.count() == 1


def test_delivery_and_read_only_move_forward(client, messenger):
    first = _outbound(messenger, "m_OUT1")
    second = _outbound(messenger, "m_OUT2")
    # Read (by watermark) arrives before the delivery: the delivery changes nothing after it.
    watermark = int(second.created_at.timestamp() * 1000) + 1
    post_signed(client, messenger, fixture_bytes("messenger_read.json", WATERMARK=watermark))
    post_signed(client, messenger, fixture_bytes("messenger_delivery.json", MID="m_OUT2"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("read", "read")


def test_delivery_by_mid_marks_that_message_and_the_earlier_ones(client, messenger):
    first = _outbound(messenger, "m_OUT1")
    second = _outbound(messenger, "m_OUT2")
    post_signed(client, messenger, fixture_bytes("messenger_delivery.json", MID="m_OUT2"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("delivered", "delivered")


def test_instagram_seen_marks_read(client, instagram):
    outbound = _outbound(instagram, "ig_OUT1", chat=IGSID)
    post_signed(client, instagram, fixture_bytes("instagram_seen.json", MID="ig_OUT1"))
    outbound.refresh_from_db()
    assert outbound.status == "read"


@pytest.mark.django_db(transaction=True)
def test_fifty_deliveries_of_one_message_raced_store_it_once(settings, httpserver):
    settings.META_GRAPH_BASE = httpserver.url_for("/v21.0")
    channel = factories.ChannelFactory(
        kind=Channel.Kind.MESSENGER, config={"page_id": PAGE_ID}, secrets={"app_secret": APP_SECRET}
    )
    template = json.loads(fixture_bytes("messenger_text.json"))
    bodies = []
    for n in range(50):
        # Meta's retries differ in the entry's time: the log cannot tell them apart, ingest must.
        template["entry"][0]["time"] = 1749416384000 + n
        bodies.append(json.dumps(template).encode())
    barrier = threading.Barrier(50)
    statuses = []

    def deliver(body):
        barrier.wait()
        response = Client().post(
            f"/webhooks/meta/{channel.pk}/",
            body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": signature_for(APP_SECRET, body)},
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 50
    webhooks.drain()
    assert Message.objects.filter(external_id=TEXT_MID).count() == 1
    assert Conversation.objects.filter(channel=channel).count() == 1
    assert Contact.objects.count() == 1
    assert WebhookDelivery.objects.filter(verdict="accepted").count() == 50


def test_instagram_account_id_picks_the_entries(client, instagram):
    body = json.loads(fixture_bytes("instagram_text.json"))
    assert body["entry"][0]["id"] == IG_ACCOUNT_ID
    body["entry"][0]["id"] = "1"
    post_signed(client, instagram, json.dumps(body).encode())
    assert Message.objects.count() == 0
