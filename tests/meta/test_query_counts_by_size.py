"""The list, thread, search and inbox requests cost the same queries on a small inbox and on
one twelve times larger, at two page sizes: what an N+1 (a query per row, per label, per
sender) would change is the rows a page holds, and here the larger inbox fills the pages.
bench/run.py checks the same at 10k and 100k conversations."""

import json

import pytest
from django.test import Client

from communications.models import Attachment, ConversationLabel, Message
from crm.models import ContactLabel, Label
from tests import factories

pytestmark = pytest.mark.django_db

SMALL, LARGE = 5, 60

# Exact counts per request, the same at both sizes (what each is: the test's last comment).
EXPECTED = {
    "list_10": 2,
    "list_100": 2,
    "thread_10": 3,
    "thread_200": 3,
    "search_10": 5,
    "search_50": 5,
    "inbox": 13,
    "inbox_open_10": 6,
    "inbox_open_200": 6,
}


@pytest.fixture
def inbox(channel, manager):
    """Grows an inbox on the manager's channel (plus one conversation elsewhere per step):
    every conversation assigned, labelled twice, its contact labelled and with an order, and
    messages from the customer, from agents and private notes, one with an attachment. The
    first conversation's thread grows by five messages per conversation added."""
    labels = [Label.objects.create(name=f"label-{n}") for n in range(3)]
    agents = [manager] + [factories.UserFactory() for _ in range(3)]
    state = {"added": 0, "thread": None}

    def grow(count: int):
        for _ in range(count):
            n = state["added"]
            state["added"] += 1
            conversation = factories.ConversationFactory(
                channel=channel, assignee=agents[n % len(agents)], unread_count=n % 3
            )
            state["thread"] = state["thread"] or conversation
            ConversationLabel.objects.bulk_create(
                [ConversationLabel(conversation=conversation, label=lb) for lb in labels[:2]]
            )
            ContactLabel.objects.create(contact=conversation.contact, label=labels[n % 3])
            factories.OrderFactory(contact=conversation.contact)
            for target in (conversation, state["thread"]):
                write_messages(target, agents[n % len(agents)], n)
            factories.ConversationFactory()  # a channel the manager does not see
        return state["thread"]

    return grow


def write_messages(conversation, agent, n: int) -> None:
    first = factories.MessageFactory(
        conversation=conversation, content=f"lamp broken {n}", sender_contact=conversation.contact
    )
    Attachment.objects.create(message=first, filename=f"{n}.png", mime_type="image/png")
    factories.MessageFactory(conversation=conversation, content=f"where is my lamp {n}")
    factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.SENT,
        sender_user=agent,
        content=f"a new lamp is on its way {n}",
    )
    factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        kind=Message.Kind.NOTE,
        status=Message.Status.SENT,
        sender_user=agent,
        content=f"refund the lamp if it is late {n}",
    )
    factories.MessageFactory(conversation=conversation, content=f"thanks {n}")


def measure(api, browser, thread, count_queries) -> tuple[dict, dict, dict]:
    """Queries and rows of each request (each asked once before, as bench/measure.py does,
    so what a first request fills in a cache is not counted)."""
    requests = {
        "list_10": (api, "/api/v1/conversations/", {"page_size": 10}),
        "list_100": (api, "/api/v1/conversations/", {"page_size": 100}),
        "thread_10": (api, f"/api/v1/conversations/{thread.pk}/messages/", {"page_size": 10}),
        "thread_200": (api, f"/api/v1/conversations/{thread.pk}/messages/", {"page_size": 200}),
        "search_10": (api, "/api/v1/search/", {"q": "lamp", "page_size": 10}),
        "search_50": (api, "/api/v1/search/", {"q": "lamp", "page_size": 50}),
        "inbox": (browser, "/inbox/", {}),
        "inbox_open_10": (browser, f"/inbox/c/{thread.pk}/", {"page_size": 10}),
        "inbox_open_200": (browser, f"/inbox/c/{thread.pk}/", {"page_size": 200}),
    }
    counts, rows, sql = {}, {}, {}
    for name, (client, url, params) in requests.items():
        client.get(url, params)
        with count_queries() as queries:
            response = client.get(url, params)
        assert response.status_code == 200, (name, response.content[:300])
        counts[name] = queries.count
        rows[name] = rows_of(name, response)
        sql[name] = queries.explain()
    return counts, rows, sql


def rows_of(name: str, response) -> int:
    if name == "inbox":  # the first list page is in the page's bootstrap JSON
        html = response.content.decode()
        start = html.index('<script id="inbox-bootstrap" type="application/json">')
        body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
        return len(json.loads(body)["conversations"])
    body = response.json()
    if name.startswith("search"):
        return len(body["messages"]["results"])
    return len(body["messages"] if name.startswith("inbox_open") else body["results"])


def test_requests_cost_the_same_queries_on_a_small_and_a_large_inbox(
    api, manager, inbox, count_queries
):
    browser = Client()
    browser.force_login(manager)
    thread = inbox(SMALL)
    small, small_rows, _ = measure(api, browser, thread, count_queries)
    inbox(LARGE - SMALL)
    large, large_rows, sql = measure(api, browser, thread, count_queries)
    # The larger inbox fills the pages: every row an N+1 would pay for is on them.
    assert large_rows == {
        "list_10": 10,
        "list_100": LARGE,
        "thread_10": 10,
        "thread_200": 200,
        "search_10": 10,
        "search_50": 50,
        "inbox": 25,
        "inbox_open_10": 10,
        "inbox_open_200": 200,
    }
    assert small_rows["list_100"] == SMALL
    # list: token with the manager's channels, the page (contact, channel, assignee joined,
    # labels as a JSON array). thread: token, access, the page (senders joined, attachments
    # aggregated). search: token with channels, conversations, message hits then page,
    # snippets, contacts. inbox: tests/pages/test_inbox_pages.py's 13. opening: session, user with
    # channels, conversation with labels, orders, activity, messages.
    differing = [name for name in EXPECTED if not small[name] == large[name] == EXPECTED[name]]
    assert not differing, "\n\n".join(
        f"{name}: {small[name]} small, {large[name]} large, {EXPECTED[name]} expected\n{sql[name]}"
        for name in differing
    )
