"""Appservice transactions go through the webhook log (integrations/matrix/webhook.py): the
endpoint stores ONE delivery per transaction and answers; the worker maps its events as a batch
(one ingest per channel, a fixed number of statements). No Synapse: a fake homeserver answers
the few client-API calls the mapper makes (profiles), or fails them on demand."""

import html
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communications import webhooks
from communications.models import Channel, Message, RealtimeEvent, WebhookDelivery
from integrations.matrix import appservice, settings_cache
from integrations.matrix.models import MatrixConnection, MatrixRoom, MatrixSettings
from tests import factories

pytestmark = pytest.mark.django_db

SERVER = "example.org"
HS_TOKEN = "hs-secret"
# The claim (1), the rooms and the event ids already stored (2), adopting known contacts (2),
# ingest_messages' batch (11, savepoint to release), the verdicts (1), the ordering lock and its
# release (2), and the two empty claims that end a drain (2): the same for 2 messages in 2
# chats as for 20 in 20.
DRAIN_STATEMENTS = 21


class FakeHomeserver:
    """Profiles answer; a ghost in `down_for` gets a 503 (the homeserver is overloaded)."""

    def __init__(self):
        self.down_for: set[str] = set()
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.paths.append(self.path)
                if "/media/" in self.path:
                    return self._answer(200, {"not": "really an image"})
                if "/profile/" in self.path:
                    if any(user in self.path for user in fake.down_for):
                        return self._answer(503, {"errcode": "M_UNKNOWN", "error": "busy"})
                    return self._answer(200, {"displayname": "Customer (WA)"})
                self._answer(404, {"errcode": "M_NOT_FOUND", "error": "not here"})

            do_PUT = do_POST = do_GET

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def homeserver(db):
    cache.clear()
    fake = FakeHomeserver()
    MatrixSettings.objects.create(
        pk=1,
        whatsapp_mode="matrix",
        homeserver_url=fake.url,
        server_name=SERVER,
        auth_mode=MatrixSettings.AuthMode.APPSERVICE,
        secrets={"as_token": "as", "hs_token": HS_TOKEN},
    )
    settings_cache.invalidate()
    yield fake
    settings_cache.invalidate()
    fake.close()


@pytest.fixture
def wa_channel(homeserver):
    return Channel.objects.create(kind=Channel.Kind.WHATSAPP, name="WhatsApp +1 555 000 0000")


@pytest.fixture
def matrix_connection(homeserver):
    return MatrixConnection.objects.create(
        user=factories.UserFactory(),
        matrix_user_id=f"@manager:{SERVER}",
        secrets={"access_token": "t"},
    )


@pytest.fixture
def kicks(monkeypatch):
    """The door's kick only counts: each test drains by hand, where it counts statements."""
    kicked = []
    monkeypatch.setattr(webhooks, "kick", lambda: kicked.append(1) or True)
    return kicked


def portal(connection_, channel, n: int) -> str:
    room_id = f"!chat{n}:{SERVER}"
    MatrixRoom.objects.create(
        room_id=room_id,
        connection=connection_,
        kind=MatrixRoom.Kind.PORTAL,
        receiver="15550000000",
        channel=channel,
    )
    return room_id


def ghost(n: int) -> str:
    return f"@whatsapp_1555123{n:04d}:{SERVER}"


def text(room_id: str, n: int, event_id: str, body: str = "") -> dict:
    return {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": ghost(n),
        "event_id": event_id,
        "origin_server_ts": 1750000000000 + n,
        "content": {"msgtype": "m.text", "body": body or f"message {event_id}"},
    }


def put(txn_id: str, body: dict, token: str | None = HS_TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().put(
        f"/matrix/appservice/_matrix/app/v1/transactions/{txn_id}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def matrix_deliveries():
    return WebhookDelivery.objects.filter(source="matrix")


@pytest.mark.parametrize("n", [2, 20])
def test_a_transaction_is_one_delivery_and_one_ingest_batch(
    n, wa_channel, matrix_connection, kicks
):
    rooms = [portal(matrix_connection, wa_channel, i) for i in range(n)]
    body = {"events": [text(room, i, f"$m{i}") for i, room in enumerate(rooms)]}

    response = put("41", body)

    assert response.status_code == 200 and response.json() == {}
    assert kicks == [1]
    delivery = matrix_deliveries().get()
    assert (delivery.channel_id, delivery.verdict, delivery.outcome) == (
        None,
        "accepted",
        "pending",
    )
    assert delivery.dedup_key == appservice.transaction_key("41", json.dumps(body).encode())
    assert Message.objects.count() == 0  # the endpoint stored the transaction, nothing else

    with CaptureQueriesContext(connection) as queries:
        assert webhooks.drain() == 1
    sql = "\n".join(q["sql"][:200] for q in queries)
    assert len(queries) == DRAIN_STATEMENTS, sql
    assert Message.objects.filter(channel=wa_channel, direction="in").count() == n
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == ("done", 1)


def test_a_resent_transaction_is_a_duplicate_and_nothing_is_doubled(
    wa_channel, matrix_connection, kicks
):
    room = portal(matrix_connection, wa_channel, 1)
    body = {"events": [text(room, 1, "$once-1"), text(room, 1, "$once-2")]}

    assert put("7", body).status_code == 200
    assert put("7", body).status_code == 200  # Synapse did not see our first 200

    accepted, duplicate = (
        matrix_deliveries().filter(verdict=verdict) for verdict in ("accepted", "duplicate")
    )
    assert (accepted.count(), duplicate.count()) == (1, 1)
    assert duplicate.get().outcome == "skipped"
    assert kicks == [1]
    assert webhooks.drain() == 1
    # The same events in another transaction (the sync feeder's, a homeserver restart's):
    # stored once, by event id.
    assert put("8", body).status_code == 200
    assert webhooks.drain() == 1
    assert Message.objects.filter(external_id__in=["$once-1", "$once-2"]).count() == 2


def test_matrix_unavailable_leaves_the_delivery_to_be_retried_and_stores_once(
    homeserver, wa_channel, matrix_connection, kicks, settings
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    first, second = (
        portal(matrix_connection, wa_channel, 1),
        portal(matrix_connection, wa_channel, 2),
    )
    reaction = {
        "type": "m.reaction",
        "room_id": first,
        "sender": ghost(1),
        "event_id": "$like",
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "👍"}},
    }
    body = {"events": [text(first, 1, "$a"), reaction, text(second, 2, "$b")]}
    homeserver.down_for.add(ghost(2))  # its profile cannot be read: the homeserver is busy

    assert put("90", body).status_code == 200
    assert webhooks.drain() == 0

    delivery = matrix_deliveries().get()
    assert (delivery.outcome, delivery.attempts) == ("processing", 1)  # waiting for its retry
    assert "MatrixUnavailable" in delivery.reason
    assert delivery.lease_until > timezone.now() + timedelta(seconds=30)
    # What came before the failure is stored (the reaction needed its message first)…
    assert list(Message.objects.values_list("external_id", flat=True)) == ["$a"]
    assert webhooks.drain() == 0  # …and the delivery is not retried before its backoff ends

    homeserver.down_for.clear()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now())
    assert webhooks.drain() == 1

    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == ("done", 2)
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["$a", "$b"]
    liked = Message.objects.get(external_id="$a")
    assert liked.metadata["reactions"][ghost(1)]["key"] == "👍"
    assert RealtimeEvent.objects.filter(type="message.updated", payload__id=liked.pk).count() == 1


def test_a_stored_message_is_not_downloaded_again(homeserver, wa_channel, matrix_connection, kicks):
    """The same image event again (a retried or re-sent transaction, the sync feeder's copy):
    skipped by event id before its media is fetched a second time."""
    room = portal(matrix_connection, wa_channel, 1)
    image = {
        "type": "m.room.message",
        "room_id": room,
        "sender": ghost(1),
        "event_id": "$photo",
        "origin_server_ts": 1750000000000,
        "content": {
            "msgtype": "m.image",
            "body": "label.png",
            "url": f"mxc://{SERVER}/label",
            "info": {"mimetype": "image/png"},
        },
    }
    assert put("5", {"events": [image]}).status_code == 200
    assert webhooks.drain() == 1
    downloads = [path for path in homeserver.paths if "/media/" in path]
    assert len(downloads) == 1

    assert put("6", {"events": [image]}).status_code == 200
    assert webhooks.drain() == 1

    assert [path for path in homeserver.paths if "/media/" in path] == downloads
    assert Message.objects.filter(external_id="$photo").count() == 1


def test_bad_or_missing_hs_token_is_refused_and_stores_nothing(
    wa_channel, matrix_connection, kicks
):
    room = portal(matrix_connection, wa_channel, 1)
    body = {"events": [text(room, 1, "$knock")]}

    assert put("1", body, token="wrong").status_code == 403
    assert put("1", body, token=None).status_code == 401

    assert not WebhookDelivery.objects.exists()
    assert kicks == []
    webhooks.drain()
    assert not Message.objects.exists()


def test_a_malformed_transaction_is_a_400_kept_for_inspection(wa_channel, kicks):
    response = put("2", {"events": {"not": "a list"}})

    assert response.status_code == 400 and response.json()["errcode"] == "M_BAD_JSON"
    delivery = matrix_deliveries().get()
    assert (delivery.verdict, delivery.outcome) == ("malformed", "skipped")
    assert kicks == []


def test_events_see_the_messages_before_them_in_the_batch(wa_channel, matrix_connection, kicks):
    """An edit in the same transaction as its message applies to it: the gathered messages are
    stored before any event that may refer to them."""
    room = portal(matrix_connection, wa_channel, 1)
    edit = {
        "type": "m.room.message",
        "room_id": room,
        "sender": ghost(1),
        "event_id": "$edit",
        "content": {
            "msgtype": "m.text",
            "body": "* 3 boxes",
            "m.new_content": {"msgtype": "m.text", "body": "3 boxes"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$order"},
        },
    }
    body = {"events": [text(room, 1, "$order", "2 boxes"), edit, text(room, 1, "$thanks")]}

    assert put("3", body).status_code == 200
    assert webhooks.drain() == 1

    order = Message.objects.get(external_id="$order")
    assert (order.content, order.is_edited) == ("3 boxes", True)
    assert Message.objects.filter(external_id="$thanks").exists()
    assert Message.objects.count() == 2


def test_the_generic_webhook_door_does_not_serve_matrix(wa_channel, client):
    response = client.post(
        f"/webhooks/matrix/{wa_channel.pk}/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_staff_read_a_transaction_in_the_webhook_log(admin_client, wa_channel, kicks):
    assert put("4", {"events": []}).status_code == 200
    delivery = matrix_deliveries().get()

    listing = admin_client.get("/admin/communications/webhookdelivery/?source=matrix")
    detail = admin_client.get(f"/admin/communications/webhookdelivery/{delivery.pk}/change/")

    assert listing.status_code == 200 and f">{delivery.pk}<" in listing.content.decode()
    assert detail.status_code == 200
    assert '"events": []' in html.unescape(detail.content.decode())  # the body, for reading


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks")
def test_a_batch_waits_while_another_drainer_maps_an_earlier_one(
    wa_channel, matrix_connection, kicks
):
    import psycopg
    from django.db import connections

    from integrations.matrix.webhook import ORDER_LOCK

    room = portal(matrix_connection, wa_channel, 1)
    assert put("51", {"events": [text(room, 1, "$late")]}).status_code == 200
    settings_ = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_["NAME"],
        user=settings_["USER"],
        host=settings_["HOST"],
        port=settings_["PORT"] or 5432,
        password=settings_["PASSWORD"] or None,
        autocommit=True,
    )
    other.execute("SELECT pg_advisory_lock(%s)", [ORDER_LOCK])  # another drainer is mapping
    drained = []

    def drain():
        try:
            drained.append(webhooks.drain())
        finally:
            connections.close_all()

    worker = threading.Thread(target=drain)
    worker.start()
    worker.join(1.0)
    assert worker.is_alive() and not Message.objects.filter(external_id="$late").exists()
    other.execute("SELECT pg_advisory_unlock(%s)", [ORDER_LOCK])
    worker.join(10)
    other.close()
    assert drained == [1] and Message.objects.filter(external_id="$late").exists()


@pytest.fixture
def new_customers_room(homeserver, wa_channel, matrix_connection, settings):
    """A room whose customer's profile cannot be read yet (the homeserver is busy): the first
    transaction from it fails and waits a minute for its retry."""
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    homeserver.down_for.add(ghost(2))
    return portal(matrix_connection, wa_channel, 2)


def retry_now(homeserver, delivery) -> None:
    """The homeserver answers again and the failed delivery's retry is due."""
    homeserver.down_for.clear()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now())


def edit_of(room_id: str, n: int, event_id: str, target: str, body: str) -> dict:
    return {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": ghost(n),
        "event_id": event_id,
        "content": {
            "msgtype": "m.text",
            "body": f"* {body}",
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": target},
        },
    }


def redaction_of(room_id: str, n: int, event_id: str, target: str) -> dict:
    return {
        "type": "m.room.redaction",
        "room_id": room_id,
        "sender": ghost(n),
        "event_id": event_id,
        "redacts": target,
        "content": {"redacts": target},
    }


def test_a_later_transaction_waits_while_an_earlier_one_waits_for_its_retry(
    homeserver, new_customers_room, kicks
):
    """Synapse's order survives a retry: the edit and the deletion in later transactions must
    not run before the message an earlier, failed transaction carries (they would find nothing
    to change, and the customer's deletion would be lost)."""
    room = new_customers_room

    assert put("70", {"events": [text(room, 2, "$order", "2 boxes")]}).status_code == 200
    assert webhooks.drain() == 0
    failed = matrix_deliveries().get()
    assert failed.outcome == "processing" and failed.attempts == 1

    assert (
        put("71", {"events": [edit_of(room, 2, "$edit", "$order", "3 boxes")]}).status_code == 200
    )
    assert put("72", {"events": [redaction_of(room, 2, "$gone", "$order")]}).status_code == 200
    assert webhooks.drain() == 0  # both wait behind transaction 70
    later = matrix_deliveries().exclude(pk=failed.pk)
    assert set(later.values_list("outcome", "attempts")) == {("pending", 0)}

    retry_now(homeserver, failed)
    assert webhooks.drain() == 3

    order = Message.objects.get(external_id="$order")
    assert order.is_deleted and order.content == ""
    updates = RealtimeEvent.objects.filter(type="message.updated", payload__id=order.pk)
    assert updates.count() == 2  # the edit, then the deletion
    assert set(matrix_deliveries().values_list("outcome", flat=True)) == {"done"}


def test_in_a_failing_batch_the_transactions_after_the_failed_one_are_put_back(
    homeserver, new_customers_room, kicks
):
    room = new_customers_room
    assert put("80", {"events": [text(room, 2, "$order", "2 boxes")]}).status_code == 200
    assert (
        put("81", {"events": [edit_of(room, 2, "$edit", "$order", "3 boxes")]}).status_code == 200
    )

    assert webhooks.drain() == 0  # one claim took both; the first failed, the edit never ran

    first, second = matrix_deliveries().order_by("id")
    assert (first.outcome, first.attempts) == ("processing", 1)
    assert (second.outcome, second.attempts, second.lease_until) == ("pending", 0, None)
    assert not Message.objects.exists()

    retry_now(homeserver, first)
    assert webhooks.drain() == 2
    assert Message.objects.get(external_id="$order").content == "3 boxes"


def test_a_transaction_that_failed_for_good_no_longer_holds_the_others_back(
    homeserver, new_customers_room, kicks
):
    room = new_customers_room
    assert put("60", {"events": [text(room, 2, "$first", "hello")]}).status_code == 200
    assert webhooks.drain() == 0
    assert put("61", {"events": [text(room, 1, "$other", "hi")]}).status_code == 200
    assert webhooks.drain() == 0
    matrix_deliveries().filter(outcome="processing").update(outcome="failed", lease_until=None)

    assert webhooks.drain() == 1
    assert Message.objects.filter(external_id="$other").exists()


def test_with_the_broker_down_a_later_transaction_is_not_processed_in_the_request(
    homeserver, new_customers_room, monkeypatch
):
    monkeypatch.setattr(webhooks, "kick", lambda: False)  # no broker: the request processes it
    room = new_customers_room
    assert put("40", {"events": [text(room, 2, "$order", "2 boxes")]}).status_code == 200
    assert (
        put("41", {"events": [edit_of(room, 2, "$edit", "$order", "3 boxes")]}).status_code == 200
    )

    first, second = matrix_deliveries().order_by("id")
    assert (first.outcome, first.attempts) == ("processing", 1)  # tried in its request, failed
    assert (second.outcome, second.attempts) == ("pending", 0)  # waits behind it

    retry_now(homeserver, first)
    assert webhooks.drain() == 2
    assert Message.objects.get(external_id="$order").content == "3 boxes"
