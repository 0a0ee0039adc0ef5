"""The Telegram webhook: the secret header, shapes, every inbound kind, edits, duplicates."""

import json
from datetime import UTC, datetime

import pytest

from communications.models import (
    Attachment,
    Contact,
    ContactIdentity,
    Conversation,
    Message,
    WebhookDelivery,
)

from .conftest import (
    CHAT_ID,
    expect_file,
    fixture_bytes,
    fixture_json,
    method_path,
    post_update,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("secret", [None, "", "wrong", "s3cret_token-from-setWebhoo"])
def test_a_missing_or_wrong_secret_is_refused_and_nothing_stored(client, tg_channel, secret):
    response = post_update(client, tg_channel, fixture_bytes("text.json"), secret=secret)
    assert response.status_code == 401
    assert "X-Telegram-Bot-Api-Secret-Token" in response.json()["detail"]
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0
    assert list(WebhookDelivery.objects.values_list("verdict", flat=True)) == ["bad_signature"]


def test_a_channel_without_a_webhook_secret_accepts_nothing(client, tg_channel):
    tg_channel.secrets = {"bot_token": tg_channel.secrets["bot_token"]}
    tg_channel.save()
    response = post_update(client, tg_channel, fixture_bytes("text.json"), secret="")
    assert response.status_code == 401
    assert "telegram_set_webhook" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_other_channel_kinds_have_no_telegram_webhook(client, channel):
    assert post_update(client, channel, fixture_bytes("text.json")).status_code == 404


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not valid JSON"),
        (b'{"message": {}}', "'update_id' is a required property"),
        (b'{"update_id": "7"}', "update_id: '7' is not of type 'integer'"),
        (
            json.dumps(
                {"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": "x"}}}
            ).encode(),
            "message.chat.id: 'x' is not of type 'integer'",
        ),
        (b"\x00" * (1024 * 1024), "not valid JSON"),
    ],
)
def test_malformed_updates_are_a_400_naming_the_problem(client, tg_channel, body, reason):
    response = post_update(client, tg_channel, body)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert Message.objects.count() == 0
    assert list(WebhookDelivery.objects.values_list("verdict", flat=True)) == ["malformed"]


def test_text_is_stored_with_the_sender(client, tg_channel):
    response = post_update(client, tg_channel, fixture_bytes("text.json"))
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "duplicate": False}
    conversation = Conversation.objects.get()
    assert conversation.channel == tg_channel and conversation.external_id == str(CHAT_ID)
    contact = Contact.objects.get()
    assert (contact.name, contact.username) == ("Olga Petrova", "olga_p")
    identity = ContactIdentity.objects.get()
    assert identity.external_id == str(CHAT_ID) and identity.username == "olga_p"
    message = Message.objects.get()
    assert message.external_id == f"{CHAT_ID}:42"
    assert message.content == "Hi! Is the blue jacket back in stock?"
    assert message.kind == Message.Kind.TEXT and message.direction == Message.Direction.INBOUND
    assert message.created_at == datetime.fromtimestamp(1764930000, tz=UTC)
    assert WebhookDelivery.objects.get().dedup_key == "update:804113001"


def test_the_same_update_twice_is_one_message(client, tg_channel):
    body = fixture_bytes("text.json")
    assert post_update(client, tg_channel, body).json()["duplicate"] is False
    again = post_update(client, tg_channel, body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Message.objects.count() == 1
    verdicts = list(WebhookDelivery.objects.order_by("id").values_list("verdict", "outcome"))
    assert verdicts == [("accepted", "done"), ("duplicate", "skipped")]


def test_the_same_message_in_another_update_is_still_one_message(client, tg_channel):
    """Dedup by (chat id, message_id), whatever the update_id (a replay, a re-set webhook)."""
    payload = fixture_json("text.json")
    post_update(client, tg_channel, payload)
    payload["update_id"] += 100
    response = post_update(client, tg_channel, payload)
    assert response.json()["duplicate"] is False
    assert Message.objects.count() == 1
    # The same message_id in another chat is another message.
    payload["update_id"] += 1
    payload["message"]["chat"] = {"id": -100555, "type": "group", "title": "Shop friends"}
    post_update(client, tg_channel, payload)
    assert Message.objects.count() == 2
    assert Message.objects.filter(external_id="-100555:42").exists()


def test_photo_stores_the_largest_size(
    client, tg_channel, bot_api, django_capture_on_commit_callbacks
):
    jpeg = b"\xff\xd8\xff\xe0" + b"large-photo" * 100
    expect_file(bot_api, "AgACAgIAAxkBAAIBK2dLarge", "photos/file_7.jpg", jpeg)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_update(client, tg_channel, fixture_bytes("photo.json"))
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.kind, message.content) == (Message.Kind.IMAGE, "This one")
    attachment = Attachment.objects.get()
    assert attachment.provider_ref == "AgACAgIAAxkBAAIBK2dLarge"
    assert (attachment.width, attachment.height) == (1280, 960)
    assert attachment.mime_type == "image/jpeg" and attachment.size == len(jpeg)
    assert attachment.download_state == Attachment.DownloadState.STORED
    with attachment.file.open("rb") as stored:
        assert stored.read() == jpeg
    paths = [entry[0].path for entry in bot_api.log]
    assert paths == [
        method_path("getFile"),
        f"/file/bot{tg_channel.secrets['bot_token']}/photos/file_7.jpg",
    ]

    # Redelivered (another update_id, a replay): nothing downloaded again, nothing doubled.
    payload = fixture_json("photo.json")
    payload["update_id"] += 1000
    post_update(client, tg_channel, payload)
    assert len(bot_api.log) == 2
    assert Message.objects.count() == 1 and Attachment.objects.count() == 1


@pytest.mark.parametrize(
    "fixture, file_id, path, kind, mime_type, filename, content",
    [
        (
            "video.json",
            "BAACAgIAAxkBAAIBLGdVideo",
            "videos/file_1.mp4",
            "video",
            "video/mp4",
            "unboxing.mp4",
            "",
        ),
        (
            "voice.json",
            "AwACAgIAAxkBAAIBLWdVoice",
            "voice/file_2.oga",
            "audio",
            "audio/ogg",
            "telegram-voice-AgADvoice.oga",
            "",
        ),
        (
            "audio.json",
            "CQACAgIAAxkBAAIBLmdAudio",
            "music/file_3.mp3",
            "audio",
            "audio/mpeg",
            "song.mp3",
            "",
        ),
        (
            "document.json",
            "BQACAgIAAxkBAAIBL2dDocument",
            "documents/file_4.pdf",
            "file",
            "application/pdf",
            "invoice-2291.pdf",
            "Invoice attached",
        ),
        (
            "sticker.json",
            "CAACAgIAAxkBAAIBMGdSticker",
            "stickers/file_5.webp",
            "sticker",
            "image/webp",
            "telegram-sticker-AgADsticker.webp",
            "👍",
        ),
        # An animated (TGS) sticker shows as its still thumbnail.
        (
            "sticker_animated.json",
            "AAMCAgADGQEAAgExZ1AnimThumb",
            "thumbnails/file_6.webp",
            "sticker",
            "image/webp",
            "telegram-sticker-AQADanimthumb.webp",
            "😂",
        ),
    ],
)
def test_media_kinds_are_downloaded_and_stored(
    client,
    tg_channel,
    bot_api,
    django_capture_on_commit_callbacks,
    fixture,
    file_id,
    path,
    kind,
    mime_type,
    filename,
    content,
):
    data = f"bytes of {fixture}".encode()
    expect_file(bot_api, file_id, path, data)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_update(client, tg_channel, fixture_bytes(fixture))
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.kind, message.content) == (kind, content)
    attachment = Attachment.objects.get()
    assert (attachment.mime_type, attachment.filename) == (mime_type, filename)
    assert attachment.provider_ref == file_id and attachment.size == len(data)
    with attachment.file.open("rb") as stored:
        assert stored.read() == data


def test_location_and_contact(client, tg_channel):
    post_update(client, tg_channel, fixture_bytes("location.json"))
    post_update(client, tg_channel, fixture_bytes("contact.json"))
    location, contact = Message.objects.order_by("id")
    assert location.kind == Message.Kind.LOCATION
    assert location.content == "50.450001, 30.523333"
    assert location.metadata["location"] == {"latitude": 50.450001, "longitude": 30.523333}
    assert contact.kind == Message.Kind.TEXT
    assert contact.content == "Contact: Ivan Shevchenko, +380671234567"
    assert contact.metadata["contact"]["user_id"] == 444555666
    assert not Attachment.objects.exists()


def test_a_reply_links_the_quoted_message(client, tg_channel):
    post_update(client, tg_channel, fixture_bytes("text.json"))
    post_update(client, tg_channel, fixture_bytes("reply.json"))
    reply = Message.objects.get(external_id=f"{CHAT_ID}:52")
    assert reply.reply_to.external_id == f"{CHAT_ID}:42"


def test_an_edit_goes_through_the_edit_path_once(client, tg_channel):
    post_update(client, tg_channel, fixture_bytes("text.json"))
    response = post_update(client, tg_channel, fixture_bytes("edited.json"))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.content == "Hi! Is the navy jacket back in stock?"
    assert message.is_edited
    [edit] = message.metadata["edits"]
    assert edit["previous"] == "Hi! Is the blue jacket back in stock?"
    assert edit["id"] == "1764930300"
    version = message.version
    # The same edit again (a replay from the admin): nothing changes.
    delivery = WebhookDelivery.objects.get(dedup_key="update:804113012")
    from communications import webhooks

    webhooks.replay([delivery.pk])
    webhooks.drain(max_seconds=5)
    message.refresh_from_db()
    assert message.version == version and len(message.metadata["edits"]) == 1


def test_an_edit_of_a_message_we_never_got_stores_it_as_it_reads_now(client, tg_channel):
    post_update(client, tg_channel, fixture_bytes("edited.json"))
    message = Message.objects.get()
    assert message.external_id == f"{CHAT_ID}:42"
    assert message.content == "Hi! Is the navy jacket back in stock?"


def test_update_kinds_we_do_not_read_are_kept_and_ignored(client, tg_channel):
    response = post_update(client, tg_channel, fixture_bytes("callback_query.json"))
    assert response.status_code == 200
    assert Message.objects.count() == 0
    assert WebhookDelivery.objects.get().outcome == "done"


def test_a_failed_download_keeps_the_message_with_a_retryable_placeholder(
    client, tg_channel, bot_api, django_capture_on_commit_callbacks
):
    from communications.tasks import retry_attachment_download

    # Telegram is down while the update is processed (and for the automatic retries here,
    # which run at once in tests).
    bot_api.expect_request(method_path("getFile"), method="POST").respond_with_json(
        {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_update(client, tg_channel, fixture_bytes("photo.json"))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.kind == Message.Kind.IMAGE and message.content == "This one"
    attachment = Attachment.objects.get()
    assert attachment.download_state == Attachment.DownloadState.FAILED
    assert attachment.download_error == "Telegram file download: Bad Gateway"
    assert attachment.provider_ref == "AgACAgIAAxkBAAIBK2dLarge"
    assert not attachment.file

    # Telegram is back: the inbox's retry button fetches it through the same file_id.
    bot_api.clear()
    jpeg = b"\xff\xd8\xff\xe0back"
    expect_file(bot_api, "AgACAgIAAxkBAAIBK2dLarge", "photos/file_7.jpg", jpeg)
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_attachment_download(attachment.pk, manual=True) == "stored"
    attachment.refresh_from_db()
    assert attachment.download_state == Attachment.DownloadState.STORED
    assert attachment.mime_type == "image/jpeg"
    with attachment.file.open("rb") as stored:
        assert stored.read() == jpeg


def test_a_document_without_a_mime_type_is_known_by_its_name():
    from integrations.telegram.parse import parse_update

    payload = fixture_json("document.json")
    del payload["message"]["document"]["mime_type"]
    [attachment] = parse_update(payload).message.attachments
    assert attachment.mime_type == "application/pdf"
    payload["message"]["document"]["file_name"] = "notes"
    [attachment] = parse_update(payload).message.attachments
    assert attachment.mime_type == "application/octet-stream"
