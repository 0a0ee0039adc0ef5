"""GET /api/v1/search/: relevance (stems, names, phones, subjects), access, highlights, pages,
query counts; the thread page opened around a hit."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Message
from crm.models import Contact
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"


def search(api, q, **params):
    response = api.get(URL, {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()


def ids(group):
    return [row["id"] for row in group["results"]]


@pytest.fixture
def conversation(channel):
    contact = factories.ContactFactory(
        name="Ana Lucía Souza", phone="+1 555-123-4567", email="ana@example.org", username="anal"
    )
    return factories.ConversationFactory(channel=channel, contact=contact)


def message(conversation, content, **kwargs):
    return factories.MessageFactory(conversation=conversation, content=content, **kwargs)


def test_stemming_finds_other_forms_of_a_word(api, conversation):
    hit = message(conversation, "I ordered two lamps last week")
    message(conversation, "Nothing to see here")
    body = search(api, "orders")
    assert ids(body["messages"]) == [hit.pk]
    assert body["messages"]["results"][0]["highlight_html"] == (
        "I <mark>ordered</mark> two lamps last week"
    )


def test_an_old_hit_under_many_newer_messages_is_found(api, conversation):
    hit = message(conversation, "the invoice was wrong")
    for i in range(30):
        message(conversation, f"newer chatter {i}")
    assert ids(search(api, "invoice")["messages"]) == [hit.pk]
    assert ids(search(api, "invoice", type="messages", page_size=1)["messages"]) == [hit.pk]


def test_every_word_must_match_in_a_two_word_search(api, conversation):
    both = message(conversation, "The lamp arrived broken")
    message(conversation, "The lamp is lovely")
    assert ids(search(api, "broken lamps")["messages"]) == [both.pk]


def test_names_and_numbers_match_as_written(api, conversation):
    hit = message(conversation, "Ticket 48213 for Joaquín")
    assert ids(search(api, "48213")["messages"]) == [hit.pk]
    assert ids(search(api, "joaquín")["messages"]) == [hit.pk]


def test_email_subject_is_searched(api, conversation):
    hit = message(
        conversation, "Hello, see attached.", metadata={"email": {"subject": "Invoice refund"}}
    )
    body = search(api, "refund")
    assert ids(body["messages"]) == [hit.pk]
    assert "<mark>refund</mark>" in body["messages"]["results"][0]["highlight_html"]


def test_edits_and_deletions_reach_the_index(api, conversation):
    hit = message(conversation, "first wording")
    Message.objects.filter(pk=hit.pk).update(content="second phrasing")
    assert ids(search(api, "wording")["messages"]) == []
    assert ids(search(api, "phrasing")["messages"]) == [hit.pk]
    Message.objects.filter(pk=hit.pk).update(content="", is_deleted=True)
    assert ids(search(api, "phrasing")["messages"]) == []


def test_highlight_is_html_escaped(api, conversation):
    message(conversation, "<script>alert(1)</script> broken & <b>lamp</b> <img src=x onerror=y>")
    html = search(api, "lamp")["messages"]["results"][0]["highlight_html"]
    # PostgreSQL's parser drops tag-like tokens from the snippet; whatever is left is escaped
    assert "<" not in html.replace("<mark>", "").replace("</mark>", "")
    assert "&amp;" in html and "<mark>lamp</mark>" in html


def test_only_the_hit_marks_become_tags():
    from communications.search import HIT_END, HIT_START, highlight_html

    assert highlight_html(f'<i>"a"</i> {HIT_START}lamp{HIT_END}') == (
        "&lt;i&gt;&quot;a&quot;&lt;/i&gt; <mark>lamp</mark>"
    )


@pytest.mark.parametrize(
    "q", ["+1 555-123-4567", "15551234567", "(555) 123 4567", "555.123.4567", "1234567", "555-12"]
)
def test_phone_in_any_formatting_and_partial(api, conversation, q):
    factories.ConversationFactory(
        channel=conversation.channel, contact=factories.ContactFactory(phone="+44 20 7946 0000")
    )
    body = search(api, q)
    assert ids(body["contacts"]) == [conversation.contact_id]
    assert body["contacts"]["results"][0]["latest_conversation_id"] == conversation.pk
    assert ids(body["conversations"]) == [conversation.pk]


@pytest.mark.parametrize("q", ["Ana", "lucía souza", "SOUZA", "ana@example", "anal"])
def test_contacts_by_partial_name_email_username(api, conversation, q):
    factories.ConversationFactory(
        channel=conversation.channel, contact=factories.ContactFactory(name="Bob Stone")
    )
    body = search(api, q)
    assert ids(body["contacts"]) == [conversation.contact_id]
    assert ids(body["conversations"]) == [conversation.pk]


def test_bulk_ingest_fills_phone_digits_and_the_vector(channel, manager, api):
    from communications.services.ingest import InboundMessage, InboundSender, ingest_messages

    sender = InboundSender(external_id="s-1", name="Zed Bulk", phone="+49 (151) 222-333")
    ingest_messages(
        channel,
        [
            InboundMessage(sender, "the parcel was delivered yesterday", external_id="b-1"),
            InboundMessage(sender, "and another parcel", external_id="b-2"),
        ],
    )
    assert Contact.objects.get(name="Zed Bulk").phone_digits == "49151222333"
    body = search(api, "deliver")
    assert [row["contact_name"] for row in body["messages"]["results"]] == ["Zed Bulk"]
    assert ids(search(api, "151222")["contacts"]) == [Contact.objects.get(name="Zed Bulk").pk]


def test_another_teams_hits_are_invisible_and_not_counted(api, conversation):
    mine = message(conversation, "refund please")
    foreign_contact = factories.ContactFactory(name="Ana Foreign", phone="+1 555 123 4567")
    foreign = factories.ConversationFactory(contact=foreign_contact)  # no team of the manager
    message(foreign, "refund please too")
    body = search(api, "refund")
    assert ids(body["messages"]) == [mine.pk]
    assert body["messages"]["next_cursor"] is None
    assert "count" not in str(body.keys())
    body = search(api, "555 123 4567")
    assert ids(body["contacts"]) == [conversation.contact_id]
    assert ids(body["conversations"]) == [conversation.pk]
    # A page of one does not hint at a hidden second hit either.
    assert search(api, "refund", type="messages", page_size=1)["messages"]["next_cursor"] is None


def test_superuser_sees_every_team(conversation, admin_user):
    foreign = factories.ConversationFactory()
    hit = message(foreign, "refund please")
    client = APIClient()
    client.force_authenticate(admin_user)
    assert ids(search(client, "refund")["messages"]) == [hit.pk]


def test_list_filters_apply(api, channel, manager, conversation):
    mine = message(conversation, "refund one")
    other = factories.ConversationFactory(channel=channel, status="resolved", is_archived=True)
    archived = message(other, "refund two")
    conversation.assignee = manager
    conversation.save()
    assert ids(search(api, "refund")["messages"]) == [archived.pk, mine.pk]
    assert ids(search(api, "refund", status="resolved")["messages"]) == [archived.pk]
    assert ids(search(api, "refund", assignee="me")["messages"]) == [mine.pk]
    assert ids(search(api, "refund", archived="false")["messages"]) == [mine.pk]
    assert ids(search(api, "refund", channel=channel.pk + 1000)["messages"]) == []
    team = manager.teams.get()
    other.team = team
    other.save()
    assert ids(search(api, "refund", team=team.pk)["messages"]) == [archived.pk]


def test_cursor_pages_are_stable_and_complete(api, conversation):
    start = timezone.now() - timedelta(days=800)
    hits = [
        message(conversation, f"refund number {i}", created_at=start + timedelta(minutes=i // 2))
        for i in range(23)
    ]
    # Newest stored first (id order: communications/search.py `_id_page`)
    expected = sorted((m.pk for m in hits), reverse=True)
    seen, cursor = [], None
    while True:
        params = {"type": "messages", "page_size": 5, **({"cursor": cursor} if cursor else {})}
        body = search(api, "refund", **params)
        assert set(body) == {"messages"}
        seen += ids(body["messages"])
        cursor = body["messages"]["next_cursor"]
        if not cursor:
            break
        message(conversation, "refund arriving meanwhile")  # newer: never shifts later pages
    assert seen == expected


@pytest.mark.parametrize(
    "params, field",
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "lamp", "cursor": "abc"}, "cursor"),
        ({"q": "lamp", "type": "messages", "cursor": "abc"}, "cursor"),
        ({"q": "lamp", "type": "everything"}, "type"),
        ({"q": "lamp", "status": "gone"}, "status"),
        ({"q": "lamp", "team": "x"}, "team"),
        ({"q": "lamp", "page_size": "0"}, "page_size"),
    ],
)
def test_bad_input_is_a_400_naming_it(api, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_requires_authentication():
    assert APIClient().get(URL, {"q": "lamp"}).status_code == 401


def test_query_counts(api, conversation, count_queries):
    for i in range(12):
        message(conversation, f"lamp {i}")
    # SQLite (tests/search/test_search_sqlite.py) reads the page's snippets in a query of its
    # own; PostgreSQL probes the word's GIN hits first (search._id_page: a rare word is not
    # looked for by walking every message)
    snippets = 1
    # The token with the manager's channels: one statement on PostgreSQL
    # (communications/api/authentication.py), DRF's token query and the channels' on SQLite.
    token = 1 if connection.vendor == "postgresql" else 2
    with count_queries() as queries:
        body = search(api, "lamp")
    # token; conversations, messages (two: hits, then the page), contacts: whatever the page size
    assert queries.count == token + 3 + snippets, queries.explain()
    assert len(body["messages"]["results"]) == 10
    with count_queries() as queries:
        search(api, "lamp", type="messages", page_size=3)
    assert queries.count == token + 1 + snippets, queries.explain()
    with count_queries() as queries:
        search(api, "lamp", status="open", assignee="none", team="none")
    assert queries.count == token + 3 + snippets, queries.explain()


def test_thread_page_around_a_hit(api, conversation, count_queries):
    start = timezone.now() - timedelta(hours=2)
    thread = [
        message(conversation, f"line {i}", created_at=start + timedelta(minutes=i))
        for i in range(100)
    ]
    target = thread[30]
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    assert connection.features.supports_json_field  # SQLite probes it once per connection
    with count_queries() as queries:
        body = api.get(url, {"around": target.pk, "page_size": 10}).json()
    # token, access check, the anchor, newer half, older half
    assert queries.count == 5, queries.explain()
    assert ids(body) == [m.pk for m in reversed(thread[26:36])]
    older = api.get(url, {"before": body["next_cursor"], "page_size": 10}).json()
    assert ids(older) == [m.pk for m in reversed(thread[16:26])]
    newer = api.get(url, {"after": body["newer_cursor"], "page_size": 10}).json()
    assert ids(newer) == [m.pk for m in reversed(thread[36:46])]
    last = api.get(url, {"after": newer["newer_cursor"], "page_size": 60}).json()
    assert ids(last) == [m.pk for m in reversed(thread[46:])]
    assert last["newer_cursor"] is None
    response = api.get(url, {"around": factories.MessageFactory().pk})
    assert response.status_code == 400 and "around" in response.json()


def test_rebuild_search_index_recomputes_every_vector(api, conversation, settings):
    from django.core.management import call_command

    hit = message(conversation, "Ich habe die Bestellungen bekommen")
    if connection.vendor != "postgresql":  # FTS5: the porter stemmer, emptied and refilled
        call_command("rebuild_search_index", stdout=open("/dev/null", "w"))
        assert ids(search(api, "bekommen")["messages"]) == [hit.pk]
        return
    assert ids(search(api, "bestellung")["messages"]) == []  # english stems: no match
    settings.SEARCH_TEXT_CONFIG = "german"
    call_command("rebuild_search_index", stdout=open("/dev/null", "w"))
    try:
        assert ids(search(api, "bestellung")["messages"]) == [hit.pk]
    finally:
        settings.SEARCH_TEXT_CONFIG = "english"
        call_command("rebuild_search_index", stdout=open("/dev/null", "w"))


@pytest.mark.parametrize("params", [{"around": "abc"}, {"around": "999999"}, {"after": "zz"}])
def test_the_inbox_thread_page_answers_bad_around_with_a_400(client, manager, conversation, params):
    client.force_login(manager)
    response = client.get(f"/inbox/c/{conversation.pk}/", params)
    assert response.status_code == 400
    assert set(response.json()) & {"around", "after"}


@pytest.mark.parametrize("rare_hits", [1000, 3], ids=["rare word: paged from its hits", "common"])
def test_message_pages_are_newest_first_whether_the_word_is_rare_or_common(
    api, conversation, monkeypatch, rare_hits
):
    from communications import search as search_module

    monkeypatch.setattr(search_module, "RARE_HITS", rare_hits)
    hits = [message(conversation, f"parcel number {i}") for i in range(7)]
    message(conversation, "nothing here")
    newest_first = [m.pk for m in reversed(hits)]
    first = search(api, "parcel", type="messages", page_size=3)
    assert ids(first["messages"]) == newest_first[:3]
    second = search(
        api, "parcel", type="messages", page_size=3, cursor=first["messages"]["next_cursor"]
    )
    assert ids(second["messages"]) == newest_first[3:6]
    third = search(
        api, "parcel", type="messages", page_size=3, cursor=second["messages"]["next_cursor"]
    )
    assert ids(third["messages"]) == newest_first[6:]
    assert third["messages"]["next_cursor"] is None
