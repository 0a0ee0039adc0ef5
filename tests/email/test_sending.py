"""Sending through a real SMTP server: retries on 4xx, failure with the reason on 5xx, one
Message-ID across attempts."""

import pytest

from communications.models import Message
from communications.services.send import send_message
from integrations.email.inbound import poll_account

from .conftest import customer_mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(account, imap):
    imap.append(customer_mail()[0])
    poll_account(account)
    return account.channel.conversations.get()


def _send(conversation, user, capture, client_id="c1"):
    with capture(execute=True):
        outcome = send_message(
            conversation=conversation, user=user, client_id=client_id, content="Hello"
        )
    outcome.message.refresh_from_db()
    return outcome.message


def test_451_twice_then_250_delivers_one_mail_with_one_message_id(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks
):
    smtp.fail_next(451, 451)
    message = _send(conversation, email_manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SENT
    assert message.send_attempts == 3
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Message-ID"] == f"<{message.external_id}>"


def test_550_fails_with_the_servers_reason(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks
):
    smtp.fail_next(550)
    message = _send(conversation, email_manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert message.send_attempts == 1
    assert message.failure_reason == (
        "the mail server refused the mail: 550 5.1.1 <customer@example.com>: "
        "Recipient address rejected: User unknown"
    )
    assert smtp.messages == []
    # The id was recorded before the SMTP transaction: a staff retry sends the same one.
    assert message.external_id


def test_a_server_that_is_down_is_temporary(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "SEND_MAX_RETRIES": 1}
    smtp.stop()
    message = _send(conversation, email_manager, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.FAILED
    assert "cannot reach the SMTP server" in message.failure_reason
    assert "gave up after 2 attempts" in message.failure_reason


def test_a_redelivered_send_reuses_the_recorded_message_id(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks
):
    """A worker killed after the server accepted but before the status was stored: the task
    runs again and the mail goes out with the same Message-ID, which the customer's client
    shows once (and which threads the same way)."""
    from communications.tasks import deliver_message

    message = _send(conversation, email_manager, django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.PENDING)
    deliver_message(message.pk)
    assert [m["Message-ID"] for m in smtp.messages] == [f"<{message.external_id}>"] * 2


def test_attachments_are_sent(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks
):
    from django.core.files.base import ContentFile

    from communications.models import Attachment

    attachment = Attachment(filename="invoice.pdf", mime_type="application/pdf", size=4)
    attachment.file.save("invoice.pdf", ContentFile(b"%PDF"), save=False)
    with django_capture_on_commit_callbacks(execute=True):
        send_message(
            conversation=conversation,
            user=email_manager,
            client_id="att",
            content="Your invoice",
            attachments=(attachment,),
        )
    [sent] = smtp.messages
    [part] = list(sent.iter_attachments())
    assert part.get_filename() == "invoice.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == b"%PDF"


def test_the_manager_chooses_to_and_cc_from_the_api(
    conversation, smtp, email_manager, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(email_manager)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    bad = client.post(url, {"client_id": "x", "content": "Hi", "email": {"to": ["nope"]}}, "json")
    assert bad.status_code == 400 and "to" in bad.json()["email"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "client_id": "cc-1",
                "content": "Looping in our courier",
                "email": {"to": ["dana@example.com"], "cc": ["courier@example.net"]},
            },
            "json",
        )
    assert response.status_code == 201, response.content
    [sent] = smtp.messages
    assert sent["To"] == "dana@example.com" and sent["Cc"] == "courier@example.net"
    assert set(sent.envelope_rcpt) == {"dana@example.com", "courier@example.net"}


def test_email_recipients_are_refused_on_other_channels(manager):
    from rest_framework.test import APIClient

    from tests import factories

    other = factories.ConversationFactory()
    other.channel.teams.add(*manager.teams.all())
    client = APIClient()
    client.force_authenticate(manager)
    response = client.post(
        f"/api/v1/conversations/{other.pk}/messages/",
        {"client_id": "y", "content": "Hi", "email": {"to": ["a@example.com"]}},
        "json",
    )
    assert response.status_code == 400
    assert "email conversations only" in response.json()["detail"]
