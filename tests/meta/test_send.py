"""Replies through the one send path: the Send API body, the messaging window and HUMAN_AGENT,
Graph errors as retry or failure, echoes that update (never double) what we sent."""

import json

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from werkzeug import Response

from communications import webhooks
from communications.models import Attachment, Message, WebhookDelivery
from communications.providers import reply_unavailable_reason
from communications.services.send import send_message
from integrations.meta.webhook import EchoBeforeAnswer, process_payloads

from .conftest import IGSID, PAGE_TOKEN, PSID, fixture_bytes, open_conversation, post_signed

pytestmark = pytest.mark.django_db

SEND_PATH = "/v21.0/me/messages"
AUTH = {"Authorization": f"Bearer {PAGE_TOKEN}"}


def send(conversation, manager, captured, text="It is, in M and L", client_id="c-1", **extra):
    with captured(execute=True):
        send_message(
            conversation=conversation, user=manager, client_id=client_id, content=text, **extra
        )
    return Message.objects.get(client_id=client_id)


def answer_ok(graph, mid="m_SENT1", recipient=PSID):
    graph.expect_oneshot_request(SEND_PATH, method="POST", headers=AUTH).respond_with_json(
        {"recipient_id": recipient, "message_id": mid}
    )


def sent_bodies(graph) -> list[dict]:
    return [r.get_json() for r, _ in graph.log if r.path == SEND_PATH and r.is_json]


def test_text_goes_to_the_send_api_with_the_page_token(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    answer_ok(graph)
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT and message.external_id == "m_SENT1"
    assert sent_bodies(graph) == [
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "It is, in M and L", "metadata": f"switchboard:{message.pk}"},
        }
    ]


def test_a_file_is_uploaded_as_filedata(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    upload = Attachment(filename="size-chart.png", mime_type="image/png", size=8)
    upload.file.save("size-chart.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=False)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {"recipient_id": PSID, "message_id": "m_FILE"}
    )
    answer_ok(graph, "m_TEXT")
    message = send(
        conversation,
        manager,
        django_capture_on_commit_callbacks,
        text="Here is the chart",
        attachments=(upload,),
    )
    assert message.status == Message.Status.SENT
    upload_request, text_request = [r for r, _ in graph.log]
    assert upload_request.headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert json.loads(upload_request.form["recipient"]) == {"id": PSID}
    assert json.loads(upload_request.form["message"]) == {
        "attachment": {"type": "image", "payload": {"is_reusable": False}},
        "metadata": f"switchboard:{message.pk}",
    }
    assert upload_request.form["messaging_type"] == "RESPONSE"
    assert upload_request.files["filedata"].read() == b"\x89PNG\r\n\x1a\n"
    assert upload_request.files["filedata"].filename == "size-chart.png"
    assert text_request.get_json()["message"]["text"] == "Here is the chart"
    assert message.metadata["meta_parts"] == {"0": "m_FILE", "1": "m_TEXT"}


def test_a_part_sent_before_a_retry_is_not_sent_again(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    upload = Attachment(filename="a.pdf", mime_type="application/pdf", size=4)
    upload.file.save("a.pdf", ContentFile(b"%PDF"), save=False)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {"recipient_id": PSID, "message_id": "m_FILE"}
    )
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {"error": {"message": "Calls to this api have exceeded the rate limit.", "code": 613}},
        status=400,
    )
    answer_ok(graph, "m_TEXT")
    message = send(conversation, manager, django_capture_on_commit_callbacks, attachments=(upload,))
    assert message.status == Message.Status.SENT and message.send_attempts == 2
    assert len(graph.log) == 3  # the file once, the text twice (refused, then taken)


@pytest.mark.parametrize(
    "status, error",
    [
        (400, {"message": "(#4) Application request limit reached", "code": 4}),
        (400, {"message": "(#17) User request limit reached", "code": 17}),
        (400, {"message": "(#32) Page request limit reached", "code": 32}),
        (400, {"message": "(#613) Calls exceeded the rate limit", "code": 613}),
        (500, {"message": "An unknown error occurred", "code": 1, "is_transient": True}),
        (503, {}),
    ],
)
def test_rate_limits_and_5xx_are_retried(
    messenger, graph, manager, django_capture_on_commit_callbacks, status, error
):
    conversation = open_conversation(messenger, PSID)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {"error": error} if error else {}, status=status
    )
    answer_ok(graph)
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT and message.send_attempts == 2
    assert len(graph.log) == 2


def test_a_permanent_error_fails_with_metas_message(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {
            "error": {
                "message": "(#100) No matching user found",
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 2018001,
                "fbtrace_id": "AbCdEf",
            }
        },
        status=400,
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason == "Messenger error 100: (#100) No matching user found"
    assert len(graph.log) == 1


def test_metas_window_error_is_said_in_plain_words(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {
            "error": {
                "message": "(#10) This message is sent outside of allowed window.",
                "code": 10,
                "error_subcode": 2018278,
            }
        },
        status=400,
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason.startswith("outside Messenger's 24-hour messaging window")
    assert "sent outside of allowed window" in message.failure_reason


def test_an_invalid_token_fails_and_says_what_to_do(
    instagram, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(instagram, IGSID)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_json(
        {"error": {"message": "Error validating access token", "code": 190}}, status=401
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason.startswith("Instagram error 190: Error validating access token")
    assert "admin → Channels" in message.failure_reason


def test_closed_window_is_said_before_typing_and_the_send_is_refused(
    messenger, graph, manager, api, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID, hours_ago=25)
    for team in manager.teams.all():
        messenger.teams.add(team)
    detail = api.get(f"/api/v1/conversations/{conversation.pk}/")
    assert detail.status_code == 200
    reason = detail.json()["reply_unavailable"]
    assert reason.startswith("the customer last wrote more than 24 hours ago")
    assert "HUMAN_AGENT" in reason
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED and message.failure_reason == reason
    assert graph.log == []


def test_open_window_says_nothing(messenger):
    assert reply_unavailable_reason(messenger, open_conversation(messenger, PSID)) == ""


def test_human_agent_tag_allows_seven_days(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    messenger.config = {**messenger.config, "human_agent": True}
    messenger.save()
    conversation = open_conversation(messenger, PSID, hours_ago=24 * 3)
    assert reply_unavailable_reason(messenger, conversation) == ""
    answer_ok(graph)
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT
    [body] = sent_bodies(graph)
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"

    late = open_conversation(messenger, "4444", hours_ago=24 * 8)
    assert "more than 7 days ago" in reply_unavailable_reason(messenger, late)


def _echo(mid: str, text: str, metadata: str = "") -> bytes:
    body = json.loads(fixture_bytes("messenger_echo.json", MID=mid, TEXT=text, METADATA=metadata))
    if not metadata:
        del body["entry"][0]["messaging"][0]["message"]["metadata"]
    return json.dumps(body).encode()


def test_send_then_echo_is_one_message(
    client, messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    answer_ok(graph, "m_OURS")
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    response = post_signed(
        client, messenger, _echo("m_OURS", message.content, f"switchboard:{message.pk}")
    )
    assert response.status_code == 200
    assert Message.objects.count() == 1
    message.refresh_from_db()
    assert message.external_id == "m_OURS" and message.status == Message.Status.SENT
    # Without the metadata (as Instagram echoes), the id the Send API returned matches.
    post_signed(client, messenger, _echo("m_OURS", message.content))
    assert Message.objects.count() == 1


def test_an_echo_of_a_reply_whose_answer_was_lost_marks_it_sent(client, messenger, manager):
    conversation = open_conversation(messenger, PSID)
    message = Message.objects.create(
        conversation=conversation,
        channel=messenger,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.UNKNOWN,
        content="On its way",
        failure_reason="Messenger did not answer",
        created_at=conversation.last_message_at,
    )
    post_signed(client, messenger, _echo("m_LOST", "On its way", f"switchboard:{message.pk}"))
    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "m_LOST")
    assert Message.objects.count() == 1


def test_an_instagram_echo_overtaking_the_answer_waits_for_it(instagram, manager):
    conversation = open_conversation(instagram, IGSID)
    sending = Message.objects.create(
        conversation=conversation,
        channel=instagram,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.SENDING,
        content="Yes we do",
        created_at=conversation.last_message_at,
    )
    echo = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000000001",
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": "17841400000000001"},
                        "recipient": {"id": IGSID},
                        "timestamp": 1569262490000,
                        "message": {"mid": "ig_OURS", "text": "Yes we do", "is_echo": True},
                    }
                ],
            }
        ],
    }
    customer_writes = {
        "sender": {"id": IGSID},
        "recipient": {"id": "17841400000000001"},
        "timestamp": 1569262491000,
        "message": {"mid": "ig_CUSTOMER", "text": "Great!"},
    }
    echo["entry"][0]["messaging"].append(customer_writes)
    with pytest.raises(EchoBeforeAnswer):
        process_payloads(instagram, [echo])
    # The customer's message in the same delivery did not wait for the echo.
    assert Message.objects.filter(external_id="ig_CUSTOMER").exists()
    # The send's answer arrives; the retried delivery then finds the id.
    Message.objects.filter(pk=sending.pk).update(status="sent", external_id="ig_OURS")
    assert process_payloads(instagram, [echo]) == 0
    assert Message.objects.count() == 2


def test_a_message_sent_from_metas_inbox_appears_as_outbound(client, messenger):
    conversation = open_conversation(messenger, PSID, hours_ago=2)
    before = conversation.last_inbound_at
    body = _echo("m_FROM_PAGE_INBOX", "Sent from Business Suite")
    assert post_signed(client, messenger, body).status_code == 200
    message = Message.objects.get(external_id="m_FROM_PAGE_INBOX")
    assert message.direction == Message.Direction.OUTBOUND
    assert message.status == Message.Status.SENT and message.sender_contact is None
    assert message.conversation_id == conversation.pk
    assert message.metadata["app_id"] == "1517776481860111"
    conversation.refresh_from_db()
    assert conversation.last_inbound_at == before  # our side's messages do not open the window
    post_signed(client, messenger, body)
    assert Message.objects.filter(external_id="m_FROM_PAGE_INBOX").count() == 1
    assert WebhookDelivery.objects.filter(outcome="done").count() == 1


def test_replay_of_an_echo_changes_nothing(client, messenger):
    open_conversation(messenger, PSID)
    post_signed(client, messenger, _echo("m_X", "hello"))
    webhooks.replay(WebhookDelivery.objects.values_list("id", flat=True))
    webhooks.drain()
    assert Message.objects.count() == 1


def test_graph_answer_that_is_not_json_still_counts_as_sent(
    messenger, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(messenger, PSID)
    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_response(
        Response("ok", status=200)
    )
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT and message.external_id is None


@pytest.mark.django_db(transaction=True)
def test_an_echo_overtaking_the_send_answer_is_not_a_second_message(
    client, messenger, graph, manager, django_capture_on_commit_callbacks
):
    """Meta may deliver the echo while our Send API call is still waiting for its answer."""
    conversation = open_conversation(messenger, PSID)

    def echo_first(request):
        message = Message.objects.get(client_id="c-1")
        assert message.status == Message.Status.SENDING
        body = _echo("m_RACE", message.content, f"switchboard:{message.pk}")
        assert post_signed(Client(), messenger, body).status_code == 200
        connection.close()  # this runs in the fake server's thread
        return Response(json.dumps({"recipient_id": PSID, "message_id": "m_RACE"}), 200)

    graph.expect_oneshot_request(SEND_PATH, method="POST").respond_with_handler(echo_first)
    message = send(conversation, manager, django_capture_on_commit_callbacks)
    assert Message.objects.count() == 1
    assert (message.status, message.external_id) == ("sent", "m_RACE")


def test_an_instagram_file_is_uploaded_then_sent_by_attachment_id(
    instagram, graph, manager, django_capture_on_commit_callbacks
):
    conversation = open_conversation(instagram, IGSID)
    upload = Attachment(filename="look.mp4", mime_type="video/mp4", size=4)
    upload.file.save("look.mp4", ContentFile(b"mp4!"), save=False)
    graph.expect_oneshot_request(
        "/v21.0/me/message_attachments", method="POST", headers=AUTH
    ).respond_with_json({"attachment_id": "1857777774821032"})
    answer_ok(graph, "ig_VIDEO", recipient=IGSID)
    message = send(
        conversation, manager, django_capture_on_commit_callbacks, text="", attachments=(upload,)
    )
    assert (message.status, message.external_id) == ("sent", "ig_VIDEO")
    upload_request, send_request = [r for r, _ in graph.log]
    assert upload_request.form["platform"] == "instagram"
    assert json.loads(upload_request.form["message"]) == {
        "attachment": {"type": "video", "payload": {"is_reusable": False}}
    }
    assert upload_request.files["filedata"].read() == b"mp4!"
    assert send_request.get_json() == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {"type": "video", "payload": {"attachment_id": "1857777774821032"}}
        },
    }


def test_an_instagram_echo_of_a_reply_left_unknown_marks_it_sent(instagram, manager):
    conversation = open_conversation(instagram, IGSID)
    lost = Message.objects.create(
        conversation=conversation,
        channel=instagram,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.UNKNOWN,
        content="Yes we do",
        failure_reason="Instagram did not answer",
        created_at=conversation.last_message_at,
    )
    echo = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000000001",
                "messaging": [
                    {
                        "sender": {"id": "17841400000000001"},
                        "recipient": {"id": IGSID},
                        "timestamp": 1569262490000,
                        "message": {"mid": "ig_LOST", "text": "Yes we do", "is_echo": True},
                    }
                ],
            }
        ],
    }
    assert process_payloads(instagram, [echo]) == 0
    lost.refresh_from_db()
    assert (lost.status, lost.external_id) == ("sent", "ig_LOST")
    assert Message.objects.count() == 1
