"""The JSON API under /api/v1/: contract, access, query counts."""

import base64
import gc
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Conversation, Message
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversations(channel):
    return [factories.ConversationFactory(channel=channel) for _ in range(30)]


def test_list_requires_authentication(client):
    assert APIClient().get("/api/v1/conversations/").status_code == 401


@pytest.mark.parametrize("page_size", [5, 25, 100])
def test_list_costs_the_same_queries_whatever_the_page_size(
    api, conversations, count_queries, page_size
):
    for conversation in conversations:
        conversation.assignee = factories.UserFactory()
        conversation.save()
    with count_queries() as queries:
        response = api.get(f"/api/v1/conversations/?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(page_size, 30)
    # token lookup with the manager's channels, one page query with contact/channel/assignee
    assert queries.count == 2, queries.explain()


def test_list_walks_every_conversation_once_by_cursor(api, conversations):
    seen, cursor = [], None
    while True:
        url = "/api/v1/conversations/?page_size=7" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    expected = list(
        Conversation.objects.order_by("-last_message_at", "-id").values_list("id", flat=True)
    )
    assert seen == expected


def test_list_shows_only_the_managers_channels(api, conversations):
    factories.ConversationFactory()  # on a channel of no team of the manager
    body = api.get("/api/v1/conversations/?page_size=100").json()
    assert {row["id"] for row in body["results"]} == {c.pk for c in conversations}


def test_superuser_sees_every_channel(conversations):
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    other = factories.ConversationFactory()
    client = APIClient()
    client.force_authenticate(admin)
    ids = {
        row["id"] for row in client.get("/api/v1/conversations/?page_size=100").json()["results"]
    }
    assert other.pk in ids and len(ids) == 31


def test_filters(api, manager, channel):
    mine = factories.ConversationFactory(channel=channel, assignee=manager, unread_count=2)
    resolved = factories.ConversationFactory(channel=channel, status="resolved")
    unassigned = factories.ConversationFactory(channel=channel)
    named = factories.ConversationFactory(channel=channel, contact__name="Zoë Quartermaine")

    def ids(query):
        response = api.get(f"/api/v1/conversations/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("assignee=me") == {mine.pk}
    assert ids("status=resolved") == {resolved.pk}
    assert ids("unread=true") == {mine.pk}
    assert unassigned.pk in ids("assignee=none") and mine.pk not in ids("assignee=none")
    assert ids("q=quarterm") == {named.pk}
    assert ids(f"channel={channel.pk}") == {mine.pk, resolved.pk, unassigned.pk, named.pk}


def test_date_filters_accept_both_spellings_and_formats(api, channel):
    old = factories.ConversationFactory(
        channel=channel, last_message_at=timezone.now() - timedelta(days=10)
    )
    new = factories.ConversationFactory(channel=channel, last_message_at=timezone.now())
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    until = (timezone.now() - timedelta(days=5)).isoformat()
    for query, expected in [
        (f"from_date={since}", {new.pk}),
        (f"fromDate={since}", {new.pk}),
        (f"to_date={until}", {old.pk}),
        (f"toDate={(timezone.now() - timedelta(days=10)).date().isoformat()}", {old.pk}),
    ]:
        response = api.get("/api/v1/conversations/", {k: v for k, v in [query.split("=", 1)]})
        assert {row["id"] for row in response.json()["results"]} == expected, query


@pytest.mark.parametrize("param", ["from_date", "fromDate", "to_date", "toDate"])
def test_a_bad_date_is_a_400_naming_the_parameter(api, param):
    response = api.get("/api/v1/conversations/", {param: "31/01/2026"})
    assert response.status_code == 400
    assert param in response.json()
    assert "31/01/2026" in response.json()[param][0]


@pytest.mark.parametrize(
    "query, param",
    [
        ("status=closed", "status"),
        ("cursor=bogus", "cursor"),
        ("page_size=0", "page_size"),
        ("channel=abc", "channel"),
    ],
)
def test_other_bad_parameters_are_400s_naming_them(api, query, param):
    response = api.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 400
    assert param in response.json()


def test_detail_has_contact_and_orders_in_one_response(api, channel, count_queries):
    conversation = factories.ConversationFactory(channel=channel)
    factories.OrderFactory.create_batch(3, contact=conversation.contact)
    with count_queries() as queries:
        response = api.get(f"/api/v1/conversations/{conversation.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["contact"]["name"] == conversation.contact.name
    assert len(body["contact"]["orders"]) == 3
    # token with the manager's channels, the conversation with contact/channel/assignee and
    # the labels of both, orders, the newest activity lines
    assert queries.count == 4, queries.explain()
    assert body["reply_unavailable"] == ""  # the API channel sends


def test_detail_says_when_replies_cannot_be_sent_on_the_channel_yet(api, channel, monkeypatch):
    from communications import providers
    from communications.models import Channel

    # Every kind has a provider by now: take one away, as a version without it would be.
    monkeypatch.delitem(providers._FACTORIES, Channel.Kind.MESSENGER, raising=False)
    channel.kind = Channel.Kind.MESSENGER
    channel.save()
    conversation = factories.ConversationFactory(channel=channel)
    body = api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert "Messenger" in body["reply_unavailable"]
    assert "not available" in body["reply_unavailable"]


def test_foreign_conversation_is_a_404_everywhere(api):
    foreign = factories.ConversationFactory()
    message = factories.MessageFactory(conversation=foreign)
    assert api.get(f"/api/v1/conversations/{foreign.pk}/").status_code == 404
    assert api.get(f"/api/v1/conversations/{foreign.pk}/messages/").status_code == 404
    assert (
        api.patch(f"/api/v1/conversations/{foreign.pk}/", {"status": "resolved"}).status_code == 404
    )
    assert api.post(f"/api/v1/conversations/{foreign.pk}/read/").status_code == 404
    assert (
        api.post(
            f"/api/v1/conversations/{foreign.pk}/messages/", {"client_id": "x", "content": "hi"}
        ).status_code
        == 404
    )
    assert api.post(f"/api/v1/messages/{message.pk}/retry/").status_code == 404
    assert api.get(f"/api/v1/contacts/{foreign.contact_id}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "open"
    assert Message.objects.count() == 1


def test_messages_newest_first_with_cursor_and_fixed_queries(api, channel, count_queries):
    conversation = factories.ConversationFactory(channel=channel)
    start = timezone.now() - timedelta(hours=1)
    messages = [
        factories.MessageFactory(conversation=conversation, created_at=start + timedelta(seconds=i))
        for i in range(60)
    ]
    assert connection.features.supports_json_field  # SQLite probes it once per connection
    with count_queries() as queries:
        first = api.get(f"/api/v1/conversations/{conversation.pk}/messages/?page_size=50")
    # token; the access check (the manager's channels joined in, no row read); the page, its
    # senders joined and its attachments aggregated per row in the same query
    assert queries.count == 3, queries.explain()
    body = first.json()
    assert [m["id"] for m in body["results"]] == [m.pk for m in reversed(messages)][:50]
    older = api.get(
        f"/api/v1/conversations/{conversation.pk}/messages/?page_size=50&before={body['next_cursor']}"
    ).json()
    assert [m["id"] for m in older["results"]] == [m.pk for m in reversed(messages)][50:]
    assert older["next_cursor"] is None


@pytest.mark.parametrize("page_size", [1, 50, 200])
def test_message_pages_cost_the_same_queries_with_attachments_and_senders(
    api, channel, manager, count_queries, page_size
):
    from communications.models import Attachment

    conversation = factories.ConversationFactory(channel=channel)
    start = timezone.now() - timedelta(hours=1)
    for i in range(60):
        message = factories.MessageFactory(
            conversation=conversation,
            created_at=start + timedelta(seconds=i),
            sender_user=manager if i % 2 else None,
        )
        for n in range(i % 3):
            Attachment.objects.create(
                message=message, filename=f"{i}-{n}.png", mime_type="image/png"
            )
    with count_queries() as queries:
        response = api.get(
            f"/api/v1/conversations/{conversation.pk}/messages/?page_size={page_size}"
        )
    assert queries.count == 3, queries.explain()
    rows = response.json()["results"]
    assert len(rows) == min(page_size, 60)
    stored = {m.pk: m for m in Message.objects.filter(conversation=conversation)}
    for row in rows:
        message = stored[row["id"]]
        assert [a["filename"] for a in row["attachments"]] == sorted(
            a.filename for a in message.attachments.all()
        )
        assert row["sender_name"] == (manager.get_full_name() if message.sender_user_id else "")


def test_messages_of_a_missing_or_foreign_conversation_are_404s(api, admin_user):
    foreign = factories.ConversationFactory()
    assert api.get(f"/api/v1/conversations/{foreign.pk}/messages/").status_code == 404
    assert api.get(f"/api/v1/conversations/{foreign.pk + 1000}/messages/").status_code == 404
    admin = APIClient()
    admin.force_authenticate(admin_user)
    assert admin.get(f"/api/v1/conversations/{foreign.pk}/messages/").status_code == 200
    assert admin.get(f"/api/v1/conversations/{foreign.pk + 1000}/messages/").status_code == 404


def _instances_left_for_the_cycle_collector(request, model) -> int:
    """Run the request with the cycle collector off; count the model's instances still alive
    after the response is dropped (only a reference cycle can hold them then)."""
    gc.collect()
    gc.disable()
    try:
        response = request()
        assert response.status_code == 200
        del response
        return sum(1 for obj in gc.get_objects() if _is_row(obj, model))
    finally:
        gc.enable()


def _is_row(obj, model=(Message, Conversation)) -> bool:
    # type(), not isinstance(): isinstance asks a proxy's __class__, which evaluates lazy
    # objects (django-csp's nonce raises once its header is written) and dead weakref proxies.
    return issubclass(type(obj), model)


def test_pages_free_their_rows_without_waiting_for_the_cycle_collector(api, channel):
    """A page's model instances held in a cycle wait for a full collection: with a few hundred
    per request that is a ~100 ms pause every dozen requests on a real server."""
    conversation_ids = []
    for _ in range(3):
        conversation = factories.ConversationFactory(channel=channel)
        for _ in range(20):
            factories.MessageFactory(conversation=conversation)
        conversation_ids.append(conversation.pk)
    del conversation
    gc.collect()
    before = sum(1 for obj in gc.get_objects() if _is_row(obj))
    thread = f"/api/v1/conversations/{conversation_ids[0]}/messages/?page_size=50"
    assert _instances_left_for_the_cycle_collector(lambda: api.get(thread), Message) <= before
    inbox = "/api/v1/conversations/?page_size=50"
    assert _instances_left_for_the_cycle_collector(lambda: api.get(inbox), Conversation) <= before


def test_send_is_idempotent_by_client_id(api, channel, django_capture_on_commit_callbacks):
    conversation = factories.ConversationFactory(channel=channel)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(url, {"client_id": "abc-1", "content": "Hello"}, format="json")
    again = api.post(url, {"client_id": "abc-1", "content": "Hello"}, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["status"] == "pending"  # stored first, delivered after commit
    # API channel without a callback URL: delivered means kept for the integrator to poll.
    assert again.json()["status"] == "sent"
    assert Message.objects.count() == 1


def test_send_without_client_id_is_a_400(api, channel):
    conversation = factories.ConversationFactory(channel=channel)
    response = api.post(
        f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "x"}, format="json"
    )
    assert response.status_code == 400 and "client_id" in response.json()


def test_update_status_assignee_and_mark_read(api, manager, channel):
    conversation = factories.ConversationFactory(channel=channel, unread_count=4)
    url = f"/api/v1/conversations/{conversation.pk}/"
    response = api.patch(url, {"status": "pending", "assignee_id": manager.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["assignee"]["id"] == manager.pk
    assert api.patch(url, {"status": "snoozed"}, format="json").status_code == 400
    until = (timezone.now() + timedelta(hours=2)).isoformat()
    assert (
        api.patch(url, {"status": "snoozed", "snoozed_until": until}, format="json").status_code
        == 200
    )
    bad = api.patch(url, {"assignee_id": 999999}, format="json")
    assert bad.status_code == 400 and "999999" in bad.json()["assignee_id"][0]
    assert api.post(f"{url}read/").json()["unread_count"] == 0
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id, conversation.unread_count) == (
        "snoozed",
        manager.pk,
        0,
    )


def test_retry_only_for_failed_outbound(api, channel, django_capture_on_commit_callbacks):
    conversation = factories.ConversationFactory(channel=channel)
    inbound = factories.MessageFactory(conversation=conversation)
    response = api.post(f"/api/v1/messages/{inbound.pk}/retry/")
    assert response.status_code == 409 and str(inbound.pk) in response.json()["detail"]
    failed = factories.MessageFactory(
        conversation=conversation,
        direction="out",
        status="failed",
        external_id=None,
        failure_reason="boom",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/messages/{failed.pk}/retry/")
    assert response.json()["status"] == "pending"
    failed.refresh_from_db()
    assert failed.status == "sent" and failed.failure_reason == ""


def test_contact_with_orders(api, channel):
    conversation = factories.ConversationFactory(channel=channel)
    factories.OrderFactory(contact=conversation.contact, number="SB-42")
    body = api.get(f"/api/v1/contacts/{conversation.contact_id}/").json()
    assert [o["number"] for o in body["orders"]] == ["SB-42"]


def test_schema_is_served(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/conversations/" in response.content


class TestApiChannelInbound:
    def post(self, channel, payload, token=None):
        client = APIClient()
        token = channel.secrets["inbound_token"] if token is None else token
        return client.post(
            f"/api/v1/channels/{channel.pk}/inbound/",
            payload,
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    def payload(self, **overrides):
        return {
            "external_id": "ext-1",
            "sender": {"id": "cust-7", "name": "Ida", "email": "ida@example.com"},
            "text": "Where is my parcel?",
            **overrides,
        }

    def test_stores_once_and_answers_200_on_repeat(self, channel):
        first = self.post(channel, self.payload())
        again = self.post(channel, self.payload())
        assert first.status_code == 201 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        assert Message.objects.count() == 1
        assert Conversation.objects.get().contact.email == "ida@example.com"

    def test_wrong_or_missing_token_is_401_and_stores_nothing(self, channel):
        assert self.post(channel, self.payload(), token="nope").status_code == 401
        assert (
            APIClient()
            .post(f"/api/v1/channels/{channel.pk}/inbound/", self.payload(), format="json")
            .status_code
            == 401
        )
        assert Message.objects.count() == 0

    def test_bad_payload_is_400_naming_the_field(self, channel):
        response = self.post(channel, self.payload(text="", sender={"name": "x"}))
        assert response.status_code == 400
        assert "sender" in response.json()

    def test_attachment_is_stored(self, channel, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        data = base64.b64encode(b"GIF89a...").decode()
        response = self.post(
            channel,
            self.payload(
                text="",
                attachments=[{"filename": "a.gif", "mime_type": "image/gif", "data_base64": data}],
            ),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["kind"] == "image"
        assert body["attachments"][0]["url"].startswith("/media/a/")

    def test_unknown_channel_is_404(self, channel):
        response = APIClient().post("/api/v1/channels/999999/inbound/", {}, format="json")
        assert response.status_code == 404


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a loader of the PostgreSQL backend (psycopg)"
)
def test_timestamps_are_read_by_the_iso_loader_with_djangos_values():
    """crm/postgresql swaps Django's pure-Python timestamptz loader for `fromisoformat`; the
    values must be the ones Django's loader gives, and what it does not parse falls back."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from django.db.backends.postgresql.psycopg_any import BaseTzLoader
    from psycopg.postgres import types
    from psycopg.pq import Format

    from crm.postgresql.base import IsoTzLoader

    oid = types["timestamptz"].oid
    connection.ensure_connection()
    installed = connection.connection.adapters.get_loader(oid, Format.TEXT)
    assert issubclass(installed, IsoTzLoader) and installed.timezone == connection.timezone
    texts = [
        b"2026-11-21 11:05:38.865614+00",
        b"2026-11-21 11:05:38+00",
        b"2026-11-21 11:05:38.5+00",
        b"1890-01-01 00:00:00+00",
        b"0044-03-15 12:00:00+00 BC",
    ]
    for zone in (UTC, ZoneInfo("Europe/Paris"), None):
        ours = type("Ours", (IsoTzLoader,), {"timezone": zone})(oid, connection.connection)
        django = type("Django", (BaseTzLoader,), {"timezone": zone})(oid, connection.connection)
        for text in texts:
            try:
                expected = django.load(text)
            except Exception as exc:
                with pytest.raises(type(exc)):
                    ours.load(memoryview(text))
                continue
            value = ours.load(memoryview(text))
            assert (value, value.tzinfo) == (expected, expected.tzinfo), text
    with pytest.raises(Exception, match="infinity|range|timestamp"):
        ours.load(b"infinity")
