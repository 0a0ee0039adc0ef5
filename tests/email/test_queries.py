"""Fixed query counts: threading a batch, and the email thread and detail views."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communications.models import Conversation
from integrations.email.inbound import poll_account
from integrations.email.parse import parse_mail
from integrations.email.threading import assign_conversations, new_message_id

from .conftest import customer_mail

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [1, 40])
def test_threading_a_batch_costs_three_queries_whatever_its_size(
    account, imap, count_queries, size
):
    imap.append(customer_mail()[0])
    poll_account(account)
    conversation = Conversation.objects.get(channel=account.channel)
    ours = new_message_id(account.channel_id, conversation.pk, 1, "acme.test")
    mails = [
        parse_mail(customer_mail(sender=f"c{i}@example.com", in_reply_to=ours)[0])
        for i in range(size)
    ]
    with count_queries() as queries:
        keys = assign_conversations(account, mails)
    # stored ids; the conversations our reply tokens name; senders' recent conversations
    assert queries.count == 3, queries.explain()
    assert set(keys) == {conversation.external_id}


def test_email_thread_and_detail_views_cost_fixed_queries(
    account, imap, email_manager, count_queries
):
    raw, first_id = customer_mail(cc="Carol <carol@example.com>")
    imap.append(raw)
    imap.append(
        [customer_mail(subject="Re: Order question", in_reply_to=first_id)[0] for _ in range(30)]
    )
    poll_account(account)
    conversation = Conversation.objects.get(channel=account.channel)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=email_manager).key}")
    with count_queries() as queries:
        page = client.get(f"/api/v1/conversations/{conversation.pk}/messages/?page_size=50")
    assert queries.count == 3, queries.explain()  # token, access check, the page
    rows = page.json()["results"]
    assert len(rows) == 31
    assert rows[-1]["metadata"]["email"]["cc"] == [
        {"name": "Carol", "address": "carol@example.com"}
    ]
    with count_queries() as queries:
        detail = client.get(f"/api/v1/conversations/{conversation.pk}/")
    # token with channels, conversation, orders, the newest activity lines, and the channel's
    # mailbox settings (is replying possible: reply_unavailable)
    assert queries.count == 5, queries.explain()
    assert detail.json()["reply_unavailable"] == ""
