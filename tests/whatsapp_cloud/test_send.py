"""Sending through the Cloud API provider, picked by the WhatsApp mode switch (classical)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from communications.models import EarlyStatus, Message
from communications.services.send import send_message
from integrations.registry import provider_for
from integrations.whatsapp_cloud.provider import CloudApiProvider

from .conftest import ACCESS_TOKEN, PHONE_NUMBER_ID, fixture_bytes, post_signed

pytestmark = pytest.mark.django_db


def send(conversation, manager, captured, text="Yes: blue and green", client_id="c-1"):
    with captured(execute=True):
        send_message(conversation=conversation, user=manager, client_id=client_id, content=text)
    return Message.objects.get(client_id=client_id)


def test_classical_mode_resolves_to_the_cloud_provider(wa_channel, classical_mode):
    assert isinstance(provider_for(wa_channel), CloudApiProvider)


def test_send_posts_the_documented_body_with_the_bearer_token(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT
    assert message.external_id == "wamid.OUT1"
    [request] = graph.sends()
    assert request["path"] == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request["headers"]["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    body = json.loads(request["body"])
    assert body["messaging_product"] == "whatsapp"
    assert body["recipient_type"] == "individual"
    assert body["to"] == "16505551234"
    assert body["type"] == "text"
    assert body["text"]["body"] == "Yes: blue and green"


def test_a_5xx_is_retried_and_the_message_sent_once(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    graph.message_answers = [(500, {"error": {"message": "Internal", "code": 1}})]
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT
    assert message.send_attempts == 2
    assert len(graph.sends()) == 2
    assert message.external_id == "wamid.OUT2"


def test_throughput_limit_is_temporary(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    graph.message_answers = [
        (400, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}})
    ]
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT and len(graph.sends()) == 2


def test_reengagement_error_fails_in_plain_words(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    graph.message_answers = [
        (
            400,
            {
                "error": {
                    "message": "(#131047) Re-engagement message",
                    "type": "OAuthException",
                    "code": 131047,
                    "error_data": {
                        "messaging_product": "whatsapp",
                        "details": "Message failed to send because more than 24 hours have "
                        "passed since the customer last replied to this number.",
                    },
                    "fbtrace_id": "AbCdEf",
                }
            },
        )
    ]
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason.startswith("outside WhatsApp's 24-hour customer-service window")
    assert "Re-engagement message" in message.failure_reason
    assert message.send_attempts == 1 and len(graph.sends()) == 1


def test_other_client_errors_fail_with_metas_message(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    graph.message_answers = [
        (
            400,
            {
                "error": {
                    "message": "(#131030) Recipient phone number not in allowed list",
                    "code": 131030,
                }
            },
        )
    ]
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert "not in allowed list" in message.failure_reason
    assert len(graph.sends()) == 1


def test_outside_the_24_hour_window_fails_without_calling_meta(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks
):
    wa_conversation.last_inbound_at = timezone.now() - timedelta(hours=25)
    wa_conversation.save(update_fields=["last_inbound_at"])
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.failure_reason == (
        "outside WhatsApp's 24-hour customer-service window: only approved templates can be sent"
    )
    assert graph.requests == []


def test_unreachable_graph_api_is_retried_then_fails_visibly(
    wa_conversation, manager, graph, classical_mode, django_capture_on_commit_callbacks, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "SEND_MAX_RETRIES": 1}
    wa_conversation.channel.config = {
        **wa_conversation.channel.config,
        "graph_api_base": "http://127.0.0.1:9/v21.0",
    }
    wa_conversation.channel.save()
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert "unreachable" in message.failure_reason and "gave up after 2 attempts" in (
        message.failure_reason
    )


OVERTAKEN_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"  # the fixtures'


def _graph_answers_with(wamid: str) -> list[tuple[int, dict]]:
    return [
        (
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
                "messages": [{"id": wamid}],
            },
        )
    ]


@pytest.mark.parametrize(
    "webhooks, final",
    [
        (["status_read.json", "status_delivered.json"], Message.Status.READ),
        (["status_failed.json"], Message.Status.FAILED),
    ],
)
def test_status_webhooks_that_beat_the_send_answer_are_applied_when_the_wamid_is_stored(
    client,
    wa_conversation,
    manager,
    graph,
    classical_mode,
    django_capture_on_commit_callbacks,
    webhooks,
    final,
):
    """Meta may post a status before its API call has answered with the wamid."""
    for name in webhooks:
        response = post_signed(client, wa_conversation.channel, fixture_bytes(name))
        assert response.status_code == 200
    assert not Message.objects.filter(external_id=OVERTAKEN_WAMID).exists()
    graph.message_answers = _graph_answers_with(OVERTAKEN_WAMID)
    message = send(wa_conversation, manager, django_capture_on_commit_callbacks)
    assert (message.external_id, message.status) == (OVERTAKEN_WAMID, final)
    if final == Message.Status.FAILED:
        assert "131026" in message.failure_reason
    assert not EarlyStatus.objects.exists()
