"""The round trip through real servers: IMAP → conversation → reply by SMTP → customer's
reply threads back. Polls run in the test process, sends in the worker task (eager)."""

import pytest

from communications.models import Conversation, Message
from communications.services.send import send_message
from integrations.email.inbound import poll_account

from .conftest import customer_mail

pytestmark = pytest.mark.django_db


def _reply(conversation, user, text, django_capture_on_commit_callbacks, client_id="r1"):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = send_message(
            conversation=conversation, user=user, client_id=client_id, content=text
        )
    outcome.message.refresh_from_db()
    return outcome.message


def test_round_trip_threads_every_reply_into_one_conversation(
    account, imap, smtp, email_manager, django_capture_on_commit_callbacks
):
    first, first_id = customer_mail(cc="Carol <carol@example.com>")
    imap.append(first)
    assert poll_account(account).stored == 1
    conversation = Conversation.objects.get(channel=account.channel)
    assert conversation.external_id == first_id
    assert conversation.subject == "Order question"
    assert conversation.contact.email == "bob@example.com"
    inbound = conversation.messages.get()
    assert inbound.content == "Where is my order 1234?"
    assert inbound.metadata["email"]["from"] == {
        "name": "Bob Customer",
        "address": "bob@example.com",
    }
    assert inbound.metadata["email"]["cc"] == [{"name": "Carol", "address": "carol@example.com"}]

    reply = _reply(
        conversation, email_manager, "It ships today.", django_capture_on_commit_callbacks
    )
    assert reply.status == Message.Status.SENT
    [sent] = smtp.messages
    assert sent["Message-ID"] == f"<{reply.external_id}>"
    assert reply.external_id.startswith(f"sb.{conversation.pk}.{reply.pk}.")
    assert sent["In-Reply-To"] == f"<{first_id}>"
    assert sent["References"] == f"<{first_id}>"
    assert sent["Subject"] == "Re: Order question"
    assert str(sent["From"]) == "Alice Martin | Acme Support <support@acme.test>"
    assert sent["To"] == "bob@example.com"
    assert sent.envelope_rcpt == ["bob@example.com"]
    assert sent.get_body(("plain",)).get_content().strip() == "It ships today."
    assert "<p>It ships today.</p>" in sent.get_body(("html",)).get_content()

    # The customer's client answers our mail: In-Reply-To names our Message-ID.
    answer, answer_id = customer_mail(
        subject="Re: Re: Order question",
        body="Thanks!",
        in_reply_to=reply.external_id,
        references=[first_id, reply.external_id],
    )
    # A second answer whose In-Reply-To is broken, but whose References still hold the
    # customer's own ids (its client dropped ours: the reply token cannot help here).
    broken, broken_id = customer_mail(
        subject="Order question (again)",
        body="One more thing",
        in_reply_to="garbage-id@nowhere.invalid",
        references=[first_id, answer_id],
    )
    imap.append([answer, broken])
    assert poll_account(account).stored == 2
    assert Conversation.objects.filter(channel=account.channel).count() == 1
    assert conversation.messages.count() == 4

    # Our next reply carries the whole chain, and still a single "Re:".
    _reply(conversation, email_manager, "Sure.", django_capture_on_commit_callbacks, "r2")
    last = smtp.messages[-1]
    assert last["Subject"] == "Re: Order question"
    assert last["In-Reply-To"] == f"<{broken_id}>"
    assert last["References"].split() == [f"<{first_id}>", f"<{answer_id}>", f"<{broken_id}>"]


def test_two_customers_with_the_same_subject_get_two_conversations(account, imap):
    for sender in ("Ann <ann@example.com>", "Ben <ben@example.com>"):
        imap.append(customer_mail(sender=sender, subject="Re: Order question")[0])
    poll_account(account)
    imap.append(customer_mail(sender="Ann <ann@example.com>", subject="RE: order  question")[0])
    poll_account(account)
    conversations = Conversation.objects.filter(channel=account.channel).order_by("pk")
    assert [c.contact.email for c in conversations] == ["ann@example.com", "ben@example.com"]
    # Ann's second mail (no thread headers, a reply subject) joined her own conversation.
    assert [c.messages.count() for c in conversations] == [2, 1]


def test_a_fresh_mail_with_a_known_subject_but_no_reply_marks_starts_a_new_conversation(
    account, imap
):
    imap.append(customer_mail(subject="Invoice")[0])
    imap.append(customer_mail(subject="Invoice")[0])
    poll_account(account)
    assert Conversation.objects.filter(channel=account.channel).count() == 2


def test_a_reply_to_a_resolved_conversation_reopens_it(account, imap):
    raw, first_id = customer_mail()
    imap.append(raw)
    poll_account(account)
    conversation = Conversation.objects.get(channel=account.channel)
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.RESOLVED)
    imap.append(customer_mail(subject="Re: Order question", in_reply_to=first_id)[0])
    poll_account(account)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN
    assert conversation.messages.count() == 2
    assert Conversation.objects.filter(channel=account.channel).count() == 1


def test_our_reply_token_threads_a_reply_that_lost_the_stored_ids(account, imap):
    raw, first_id = customer_mail()
    imap.append(raw)
    poll_account(account)
    conversation = Conversation.objects.get(channel=account.channel)
    from integrations.email.threading import new_message_id

    ours = new_message_id(account.channel_id, conversation.pk, 999999, "acme.test")
    forged = ours.replace(f"sb.{conversation.pk}.", f"sb.{conversation.pk + 1}.")
    imap.append(customer_mail(subject="Hello", in_reply_to=ours)[0])
    imap.append(customer_mail(subject="Hello", in_reply_to=forged, sender="x@example.com")[0])
    poll_account(account)
    assert conversation.messages.count() == 2
    assert Conversation.objects.filter(channel=account.channel).count() == 2
