"""Sending through the Telegram provider: text, uploads, replies, and Bot API errors."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from communications.models import Attachment, Message
from communications.providers import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    provider_for,
)
from communications.services.send import send_message
from integrations.telegram.provider import TelegramProvider
from tests import factories

from .conftest import CHAT_ID, error, method_path, ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(tg_channel, manager):
    return factories.ConversationFactory(channel=tg_channel, external_id=str(CHAT_ID))


def sent_message(message_id: int, **extra) -> dict:
    return ok(
        {
            "message_id": message_id,
            "from": {"id": 123456789, "is_bot": True, "first_name": "Shop", "username": "shop_bot"},
            "chat": {"id": CHAT_ID, "type": "private", "first_name": "Olga"},
            "date": 1764930500,
            **extra,
        }
    )


def send(conversation, manager, captured, text="Yes!", client_id="c-1", **kwargs):
    with captured(execute=True):
        send_message(
            conversation=conversation, user=manager, client_id=client_id, content=text, **kwargs
        )
    return Message.objects.get(client_id=client_id)


def test_the_channel_kind_resolves_to_the_telegram_provider(tg_channel):
    assert isinstance(provider_for(tg_channel), TelegramProvider)


def test_text_goes_as_plain_text_exactly_as_typed(
    conversation, manager, bot_api, django_capture_on_commit_callbacks
):
    text = "Price: 1.5*2 = 3 _today_ [50% off] (see #promo) `code` > all! ~ | {x} + - = ."
    bot_api.expect_oneshot_request(
        method_path("sendMessage"), method="POST", json={"chat_id": str(CHAT_ID), "text": text}
    ).respond_with_json(sent_message(77, text=text))
    message = send(conversation, manager, django_capture_on_commit_callbacks, text=text)
    assert message.status == Message.Status.SENT, message.failure_reason
    assert message.external_id == f"{CHAT_ID}:77"
    [(request, _)] = bot_api.log
    assert "parse_mode" not in request.get_json()


def test_a_reply_names_the_quoted_message(
    conversation, manager, bot_api, django_capture_on_commit_callbacks
):
    quoted = factories.MessageFactory(conversation=conversation, external_id=f"{CHAT_ID}:42")
    bot_api.expect_oneshot_request(method_path("sendMessage"), method="POST").respond_with_json(
        sent_message(78)
    )
    send(
        conversation,
        manager,
        django_capture_on_commit_callbacks,
        text="Size M is back",
        reply_to_id=quoted.pk,
    )
    body = bot_api.log[0][0].get_json()
    assert body["reply_parameters"] == {"message_id": 42, "allow_sending_without_reply": True}


@pytest.mark.parametrize(
    "mime_type, filename, method, field",
    [
        ("image/jpeg", "jacket.jpg", "sendPhoto", "photo"),
        ("video/mp4", "how-to.mp4", "sendVideo", "video"),
        ("audio/ogg", "note.ogg", "sendVoice", "voice"),
        ("audio/mpeg", "jingle.mp3", "sendAudio", "audio"),
        ("application/pdf", "invoice.pdf", "sendDocument", "document"),
        ("image/gif", "dance.gif", "sendDocument", "document"),
    ],
)
def test_an_attachment_is_uploaded_with_the_text_as_caption(
    conversation,
    manager,
    bot_api,
    django_capture_on_commit_callbacks,
    mime_type,
    filename,
    method,
    field,
):
    data = b"the stored file's bytes \x00\x01\x02"
    attachment = Attachment(filename=filename, mime_type=mime_type, size=len(data))
    attachment.file.save(filename, ContentFile(data), save=False)
    bot_api.expect_oneshot_request(method_path(method), method="POST").respond_with_json(
        sent_message(90)
    )
    message = send(
        conversation,
        manager,
        django_capture_on_commit_callbacks,
        text="Here you go",
        attachments=(attachment,),
        kind=Message.Kind.FILE,
    )
    assert message.status == Message.Status.SENT, message.failure_reason
    assert message.external_id == f"{CHAT_ID}:90"
    [(request, _)] = bot_api.log
    assert request.content_type.startswith("multipart/form-data")
    assert request.form["chat_id"] == str(CHAT_ID)
    assert request.form["caption"] == "Here you go"
    upload = request.files[field]
    assert upload.filename == filename and upload.read() == data
    assert upload.content_type == mime_type


@pytest.mark.parametrize(
    "status, answer, reason",
    [
        (
            403,
            error(403, "Forbidden: bot was blocked by the user"),
            "Telegram: Forbidden: bot was blocked by the user",
        ),
        (
            400,
            error(400, "Bad Request: chat not found"),
            "Telegram: Bad Request: chat not found",
        ),
        (
            401,
            error(401, "Unauthorized"),
            "Telegram refused the bot token (Unauthorized): check it in admin → Channels",
        ),
    ],
)
def test_refusals_fail_with_telegrams_description(
    conversation, manager, bot_api, django_capture_on_commit_callbacks, status, answer, reason
):
    bot_api.expect_request(method_path("sendMessage"), method="POST").respond_with_json(
        answer, status=status
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason == reason
    assert len(bot_api.log) == 1  # never retried


@pytest.mark.parametrize(
    "status, answer",
    [
        (429, error(429, "Too Many Requests: retry after 7", retry_after=7)),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    ],
)
def test_flood_control_and_server_errors_are_retried_and_sent_once(
    conversation, manager, bot_api, django_capture_on_commit_callbacks, status, answer
):
    bot_api.expect_ordered_request(method_path("sendMessage"), method="POST").respond_with_json(
        answer, status=status
    )
    bot_api.expect_ordered_request(method_path("sendMessage"), method="POST").respond_with_json(
        sent_message(79)
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT
    assert message.send_attempts == 2 and len(bot_api.log) == 2
    assert message.external_id == f"{CHAT_ID}:79"


def test_flood_control_waits_at_least_retry_after(
    conversation, manager, bot_api, monkeypatch, django_capture_on_commit_callbacks
):
    from communications import tasks

    bot_api.expect_request(method_path("sendMessage"), method="POST").respond_with_json(
        error(429, "Too Many Requests: retry after 30", retry_after=30), status=429
    )
    message = factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.PENDING,
        external_id=None,
        content="Hello",
    )
    queued = []
    monkeypatch.setattr(tasks, "queue_delivery", lambda pk, countdown=0: queued.append(countdown))
    conf = tasks.deliver_message.app.conf
    conf.task_always_eager = False  # a worker: the retry is queued, not run at once
    before = timezone.now()
    try:
        assert tasks.deliver_message(message.pk) == "retrying"
    finally:
        conf.task_always_eager = True
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert message.deliver_after >= before + timedelta(seconds=30)
    assert queued and queued[0] >= 30
    assert "retry after 30" in message.failure_reason


def test_the_provider_raises_what_the_send_path_maps(tg_channel, conversation, bot_api):
    message = factories.MessageFactory(
        conversation=conversation, direction=Message.Direction.OUTBOUND, content="x"
    )
    bot_api.expect_oneshot_request(method_path("sendMessage")).respond_with_json(
        error(429, "Too Many Requests: retry after 5", retry_after=5), status=429
    )
    with pytest.raises(TemporaryDeliveryError) as temporary:
        TelegramProvider(tg_channel).send(message)
    assert temporary.value.retry_after == 5
    long = factories.MessageFactory(
        conversation=conversation, direction=Message.Direction.OUTBOUND, content="x" * 4097
    )
    with pytest.raises(PermanentDeliveryError, match="4096 characters"):
        TelegramProvider(tg_channel).send(long)


def test_without_a_bot_token_replies_are_blocked_up_front(tg_channel, conversation):
    from communications.providers import reply_unavailable_reason

    tg_channel.secrets = {}
    tg_channel.save()
    assert "isn't set up yet" in reply_unavailable_reason(tg_channel)
    tg_channel.secrets = {"bot_token": "1:x"}
    tg_channel.save()
    assert reply_unavailable_reason(tg_channel) == ""
