"""Outbound media through the one send path: the stored file is uploaded to Meta's media
endpoint and sent by id, or sent by link when the attachment names a public URL; Graph's
rate limits are retried later, never failed."""

import json

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from werkzeug import Response

from communications.files import store_after_commit
from communications.models import Attachment, Message
from communications.services import delivery
from communications.services.send import send_message

from .conftest import ACCESS_TOKEN, BEARER, PHONE_NUMBER_ID, sent_message

pytestmark = pytest.mark.django_db

MESSAGES = f"/v21.0/{PHONE_NUMBER_ID}/messages"
MEDIA = f"/v21.0/{PHONE_NUMBER_ID}/media"
PNG = b"\x89PNG\r\n\x1a\n" + b"fake-png-body" * 20


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def upload(manager, conversation, data: bytes, name: str, mime_type: str, captured):
    """What the inbox's upload does: the file is stored after commit, then delivered."""
    attachment = Attachment(filename=name, mime_type=mime_type, size=len(data))
    with captured(execute=True), transaction.atomic():
        store_after_commit(attachment, ContentFile(data), name)
        send_message(
            conversation=conversation,
            user=manager,
            client_id=name,
            kind=Message.Kind.FILE,
            attachments=(attachment,),
        )
    return Message.objects.get(client_id=name)


def posted_json(httpserver, path: str) -> list[dict]:
    return [json.loads(request.data) for request, _ in httpserver.log if request.path == path]


def test_a_stored_image_is_uploaded_then_sent_by_its_media_id(
    hs_conversation, manager, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    httpserver.expect_request(MEDIA, method="POST", headers=BEARER).respond_with_json(
        {"id": "1037543291543636"}
    )
    httpserver.expect_request(MESSAGES, method="POST", headers=BEARER).respond_with_json(
        sent_message("wamid.IMAGE1")
    )
    message = upload(
        manager, hs_conversation, PNG, "shoes.png", "image/png", django_capture_on_commit_callbacks
    )
    message.refresh_from_db()
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.IMAGE1")

    [(upload_request, _), (send_request, _)] = httpserver.log
    assert upload_request.path == MEDIA
    assert upload_request.form["messaging_product"] == "whatsapp"
    assert upload_request.form["type"] == "image/png"
    sent_file = upload_request.files["file"]
    assert (sent_file.filename, sent_file.read()) == ("shoes.png", PNG)
    assert json.loads(send_request.data) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "image",
        "image": {"id": "1037543291543636"},
    }


@pytest.mark.parametrize(
    ("name", "mime_type", "kind"),
    [
        ("clip.mp4", "video/mp4", "video"),
        ("note.ogg", "audio/ogg", "audio"),
        ("invoice.pdf", "application/pdf", "document"),
    ],
)
def test_video_audio_and_documents_go_as_their_whatsapp_type(
    hs_conversation,
    manager,
    httpserver,
    classical_mode,
    django_capture_on_commit_callbacks,
    name,
    mime_type,
    kind,
):
    httpserver.expect_request(MEDIA, method="POST").respond_with_json({"id": "55"})
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(sent_message("wamid.M"))
    upload(manager, hs_conversation, b"bytes", name, mime_type, django_capture_on_commit_callbacks)
    [body] = posted_json(httpserver, MESSAGES)
    assert body["type"] == kind
    expected = {"id": "55", "filename": name} if kind == "document" else {"id": "55"}
    assert body[kind] == expected


def test_an_attachment_with_a_public_url_is_sent_by_link_without_an_upload(
    hs_conversation, manager, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(sent_message("wamid.L"))
    link = "https://cdn.example.com/catalog/blue-shoes.jpg"
    attachment = Attachment(filename="blue-shoes.jpg", mime_type="image/jpeg", provider_ref=link)
    with django_capture_on_commit_callbacks(execute=True):
        send_message(
            conversation=hs_conversation,
            user=manager,
            client_id="by-link",
            content="Blue, size 42",
            kind=Message.Kind.IMAGE,
            attachments=(attachment,),
        )
    assert Message.objects.get(client_id="by-link").status == Message.Status.SENT
    assert [r.path for r, _ in httpserver.log] == [MESSAGES]  # no upload
    [body] = posted_json(httpserver, MESSAGES)
    assert body["image"] == {"link": link, "caption": "Blue, size 42"}


def test_audio_cannot_carry_a_caption_so_the_text_follows_and_a_retry_resends_nothing_sent(
    hs_conversation, manager, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    link = "https://cdn.example.com/voice.ogg"
    attachment = Attachment(filename="voice.ogg", mime_type="audio/ogg", provider_ref=link)
    answers = iter(
        [
            Response(json.dumps(sent_message("wamid.AUDIO")), 200, mimetype="application/json"),
            # The text part hits the pair rate limit: retried later, the audio not sent again.
            Response(
                json.dumps(
                    {
                        "error": {
                            "message": "(#131056) (Business Account, Consumer Account) pair "
                            "rate limit hit",
                            "type": "OAuthException",
                            "code": 131056,
                        }
                    }
                ),
                400,
                mimetype="application/json",
            ),
            Response(json.dumps(sent_message("wamid.TEXT")), 200, mimetype="application/json"),
        ]
    )
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(
        lambda request: next(answers)
    )
    with django_capture_on_commit_callbacks(execute=True):
        send_message(
            conversation=hs_conversation,
            user=manager,
            client_id="voice",
            content="Listen to this",
            kind=Message.Kind.AUDIO,
            attachments=(attachment,),
        )
    message = Message.objects.get(client_id="voice")
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.TEXT")
    assert message.send_attempts == 2
    bodies = posted_json(httpserver, MESSAGES)
    assert [b["type"] for b in bodies] == ["audio", "text", "text"]
    assert bodies[0]["audio"] == {"link": link}
    assert bodies[2]["text"]["body"] == "Listen to this"


@pytest.mark.parametrize("code", [130429, 131056])
def test_rate_limits_are_retried_later_never_failed(
    hs_conversation,
    manager,
    httpserver,
    classical_mode,
    django_capture_on_commit_callbacks,
    monkeypatch,
    code,
):
    # The message goes back to pending with a later deliver_after (eager tasks then try again
    # at once here): record what the release decided.
    released = []
    real = delivery.release_for_retry

    def release_for_retry(claim, reason, **kwargs):
        delay = real(claim, reason, **kwargs)
        released.append((reason, delay, Message.objects.get(pk=claim.message.pk).status))
        return delay

    monkeypatch.setattr(delivery, "release_for_retry", release_for_retry)
    answers = iter(
        [
            Response(
                json.dumps({"error": {"message": f"(#{code}) Rate limit hit", "code": code}}),
                400,
                mimetype="application/json",
            ),
            Response(json.dumps(sent_message("wamid.LATER")), 200, mimetype="application/json"),
        ]
    )
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(
        lambda request: next(answers)
    )
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=hs_conversation, user=manager, client_id="rl", content="Hi")
    message = Message.objects.get(client_id="rl")
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.LATER")
    [(reason, delay, status)] = released
    assert f"WhatsApp error {code}" in reason
    assert delay > 0 and status == Message.Status.PENDING  # later, and never failed


def test_outside_the_window_meta_131047_fails_with_a_clear_reason(
    hs_conversation, manager, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        {
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed "
                    "since the customer last replied to this number.",
                },
            }
        },
        status=400,
    )
    with django_capture_on_commit_callbacks(execute=True):
        send_message(conversation=hs_conversation, user=manager, client_id="late", content="Hi")
    message = Message.objects.get(client_id="late")
    assert message.status == Message.Status.FAILED
    assert message.failure_reason.startswith("outside WhatsApp's 24-hour customer-service window")
    assert len(httpserver.log) == 1  # permanent: not retried


def test_a_failed_upload_is_retried_and_the_message_sent_once(
    hs_conversation, manager, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    uploads = iter(
        [
            Response('{"error":{"code":1,"message":"An unknown error occurred"}}', 500),
            Response('{"id":"77"}', 200, mimetype="application/json"),
        ]
    )
    httpserver.expect_request(MEDIA, method="POST").respond_with_handler(
        lambda request: next(uploads)
    )
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(sent_message("wamid.U"))
    message = upload(
        manager, hs_conversation, PNG, "a.png", "image/png", django_capture_on_commit_callbacks
    )
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert [r.path for r, _ in httpserver.log] == [MEDIA, MEDIA, MESSAGES]
    assert all(r.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for r, _ in httpserver.log)
