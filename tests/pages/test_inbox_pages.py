"""The inbox pages and the JSON they call: access, shapes and exact query counts."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from communications import events, pages
from communications.models import Attachment, Message, RealtimeEvent
from tests import factories


@pytest.fixture
def browser(manager):
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def conversation(channel):
    conversation = factories.ConversationFactory(channel=channel, unread_count=2)
    factories.OrderFactory(contact=conversation.contact, number="SB-1")
    factories.OrderFactory(contact=conversation.contact, number="SB-2")
    for n in range(3):
        message = factories.MessageFactory(conversation=conversation, content=f"m{n}")
        Attachment.objects.create(message=message, filename=f"f{n}.png", mime_type="image/png")
    return conversation


def bootstrap(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="inbox-bootstrap" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def test_inbox_needs_a_login(db):
    response = Client().get("/inbox/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("rows", [3, 20])
def test_inbox_shell_costs_a_fixed_number_of_queries(browser, channel, rows, count_queries):
    for _ in range(rows):
        factories.ConversationFactory(channel=channel)
    factories.ConversationFactory()  # on a channel the manager cannot see
    with count_queries() as counter:
        response = browser.get("/inbox/")
    assert response.status_code == 200
    # session, user with their channels, latest event id, list page, channels, managers,
    # teams, saved views, counts (the views' in the same aggregate), labels, unread mentions,
    # the user's teams (canned responses' scope), and whether the top bar links the reports
    # (reports.view_reports: one EXISTS; none for staff)
    assert counter.count == 13, counter.explain()
    data = bootstrap(response)
    assert len(data["conversations"]) == rows
    assert {c["channel"]["id"] for c in data["conversations"]} == {channel.pk}
    assert data["user"]["name"]
    assert [c["id"] for c in data["channels"]] == [channel.pk]
    assert data["counts"]["all"] == rows


def test_inbox_shell_applies_filters_from_the_url(browser, channel, manager):
    mine = factories.ConversationFactory(channel=channel, assignee=manager)
    factories.ConversationFactory(channel=channel)
    data = bootstrap(browser.get("/inbox/?assignee=me"))
    assert [c["id"] for c in data["conversations"]] == [mine.pk]
    assert data["filters"] == {"assignee": "me"}
    # a bad filter value does not break the page: it shows the unfiltered list
    data = bootstrap(browser.get("/inbox/?status=bogus"))
    assert len(data["conversations"]) == 2 and data["filters"] == {}


def test_inbox_shell_starts_from_the_latest_event_id(browser, channel):
    event = RealtimeEvent.objects.create(type="x", channel=channel, payload={})
    assert bootstrap(browser.get("/inbox/"))["last_event_id"] == event.pk


def test_opening_a_conversation_is_one_request_with_thread_and_card(
    browser, conversation, count_queries
):
    with count_queries() as counter:
        response = browser.get(f"/inbox/c/{conversation.pk}/")
    assert response.status_code == 200
    # session, user with their channels, conversation (with its and its contact's labels),
    # orders, activity lines, messages with their attachments
    assert counter.count == 6, counter.explain()
    data = response.json()
    assert data["conversation"]["id"] == conversation.pk
    assert [o["number"] for o in data["conversation"]["contact"]["orders"]] == ["SB-2", "SB-1"]
    assert [m["content"] for m in data["messages"]] == ["m2", "m1", "m0"]
    assert data["messages"][0]["attachments"][0]["url"].startswith("/media/a/")
    assert data["next_cursor"] is None


def test_opening_another_teams_conversation_is_404(browser):
    foreign = factories.ConversationFactory()
    assert browser.get(f"/inbox/c/{foreign.pk}/").status_code == 404


def test_counts_in_one_query(browser, channel, manager, count_queries):
    factories.ConversationFactory(channel=channel, assignee=manager, unread_count=1)
    factories.ConversationFactory(channel=channel, status="pending")
    factories.ConversationFactory(channel=channel, status="resolved")
    factories.ConversationFactory(unread_count=5)  # not visible
    with count_queries() as counter:
        response = browser.get("/inbox/counts/")
    # session, user with their channels, saved views, the aggregate (the views' counts in it)
    assert counter.count == 4, counter.explain()
    assert response.json() == {
        "all": 3,
        "open": 1,
        "pending": 1,
        "snoozed": 0,
        "resolved": 1,
        "mine": 1,
        "unassigned": 1,
        "unread": 1,
        "as_of": 0,  # no event yet: the page applies every event's delta
        "views": {},  # no saved view
    }


def upload(browser, conversation, client_id="c-1", name="photo.png", data=b"\x89PNG....", **extra):
    file = SimpleUploadedFile(name, data, content_type=extra.pop("content_type", "image/png"))
    return browser.post(
        f"/inbox/c/{conversation.pk}/upload/", {"file": file, "client_id": client_id, **extra}
    )


@pytest.mark.django_db(transaction=True)
def test_upload_stores_the_file_before_the_message_event(
    browser, conversation, settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path
    files_at_broadcast = []

    def broadcast(items):
        files_at_broadcast.append([str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png")])

    monkeypatch.setattr(events, "broadcast_events", broadcast)
    response = upload(browser, conversation)
    assert response.status_code == 201
    message = Message.objects.get(client_id="c-1")
    assert message.kind == "image"
    attachment = message.attachments.get()
    # Written after commit, but before anybody is told of the message.
    assert files_at_broadcast[0] == [attachment.file.name]
    assert attachment.file.read() == b"\x89PNG...."
    assert attachment.size == 8 and attachment.mime_type == "image/png"
    event = RealtimeEvent.objects.get(type="message.created", payload__id=message.pk)
    assert event.payload["attachments"][0]["filename"] == "photo.png"
    assert response.json()["attachments"][0]["url"].startswith("/media/a/")


def test_upload_retried_with_the_same_client_id_stores_one_message(
    browser, conversation, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    assert upload(browser, conversation).status_code == 201
    again = upload(browser, conversation)
    assert again.status_code == 200
    assert Message.objects.filter(client_id="c-1").count() == 1
    assert Attachment.objects.filter(message__client_id="c-1").count() == 1


def test_upload_over_the_limit_is_refused_with_a_clear_error(
    browser, conversation, monkeypatch, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(pages, "MAX_UPLOAD_BYTES", 4)
    response = upload(browser, conversation)
    assert response.status_code == 413
    assert "photo.png" in response.json()["detail"] and "limit" in response.json()["detail"]
    assert not Message.objects.filter(client_id="c-1").exists()


def test_upload_as_a_private_note_and_as_a_video(browser, conversation, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    note = upload(browser, conversation, client_id="n-1", kind="note").json()
    assert note["kind"] == "note" and note["status"] == "sent"
    video = upload(
        browser, conversation, client_id="v-1", name="clip.webm", content_type="video/webm"
    ).json()
    assert video["kind"] == "video"


def test_upload_into_a_foreign_conversation_is_404(browser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    foreign = factories.ConversationFactory()
    assert upload(browser, foreign).status_code == 404
    assert not Message.objects.exists() or not Message.objects.filter(client_id="c-1").exists()


def test_upload_without_a_client_id_is_400(browser, conversation):
    assert upload(browser, conversation, client_id="").status_code == 400


# --- the API views the page calls ------------------------------------------------------------


def test_api_calls_of_the_page_cost_fixed_queries(browser, conversation, count_queries):
    for n in range(60):
        factories.MessageFactory(conversation=conversation, content=f"old {n}")
    first = browser.get(f"/inbox/c/{conversation.pk}/").json()
    messages_url = f"/api/v1/conversations/{conversation.pk}/messages/"
    cases = [
        # session, the user with their channels (communications/user_rows.py), the page
        ("get", "/api/v1/conversations/?status=open", None, 3),
        # session, user with channels, access check, messages with their attachments
        ("get", f"{messages_url}?before={first['next_cursor']}", None, 4),
        # ... + the conversation's labels (its payload carries them)
        ("post", f"/api/v1/conversations/{conversation.pk}/read/", None, 8),
        # ... + labels, and the activity line (its event shares the events' INSERT)
        ("patch", f"/api/v1/conversations/{conversation.pk}/", {"status": "pending"}, 11),
        # ... + the conversation read back after its UPDATE: the event carries the row's state
        ("post", messages_url, {"client_id": "x-1", "content": "hi"}, 11),
        # the same request again (a retry, a double click) finds the stored message
        ("post", messages_url, {"client_id": "x-1", "content": "hi"}, 6),
        ("get", "/inbox/counts/", None, 4),  # + the saved views, counted in the aggregate
    ]
    # pages call these with session auth and the CSRF header; counts are whole requests
    for method, url, body, expected in cases:
        with count_queries() as counter:
            response = getattr(browser, method)(url, body, content_type="application/json")
        assert response.status_code in (200, 201), (url, response.content)
        assert counter.count == expected, f"{method} {url}\n{counter.explain()}"
