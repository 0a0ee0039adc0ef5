"""Two managers, two teams, two WhatsApp numbers (issue 10): real Synapse, the bridge emulator,
Switchboard's appservice endpoint on a live server, the API and the inbox websocket on real
Redis, as plain managers (no superuser anywhere)."""

import asyncio
import secrets
import time
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from communications.models import Channel, Conversation, Message, WebhookDelivery
from crm.asgi import application
from integrations.matrix import connect
from integrations.matrix.models import WhatsAppNumber
from tests import factories
from tests.realtime.conftest import ORIGIN, _use_layer

from .conftest import connect_manager
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

ANN_PHONE, BOB_PHONE = "15557654321", "15550000002"
ANN_CUSTOMER, BOB_CUSTOMER = "4915111110001", "4915122220002"


@pytest.fixture
def redis_layer(settings):
    yield from _use_layer(settings, "redis")


def plain_manager(name: str):
    """A manager in a team of their own: not staff, not a superuser."""
    user = factories.UserFactory(username=f"{name}-{secrets.token_hex(3)}")
    assert not (user.is_superuser or user.is_staff)
    factories.TeamFactory(name=f"team of {user.username}").members.add(user)
    return user


def matrix_transactions_done() -> int:
    """Appservice transactions processed (they go through the webhook log)."""
    return WebhookDelivery.objects.filter(source="matrix", outcome="done").count()


def api_for(user) -> APIClient:
    """A client per request, as each request loads its user afresh (access is cached on it)."""
    client = APIClient()
    client.force_authenticate(type(user).objects.get(pk=user.pk))
    return client


async def open_socket(user) -> WebsocketCommunicator:
    client = Client()
    await asyncio.to_thread(client.force_login, user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", ORIGIN),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    while (await socket.receive_json_from(timeout=10)).get("type") != "ready":
        pass
    return socket


async def created_messages(socket, seen: list, until, timeout: float = 30.0) -> None:
    """Collect every message.created the socket gets (in `seen`) until `until(seen)` holds."""
    deadline = time.monotonic() + timeout
    while not until(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"the socket did not get the messages; it got {seen}"
        try:
            event = await socket.receive_json_from(timeout=left)
        except TimeoutError:
            raise AssertionError(f"the socket did not get the messages; it got {seen}") from None
        if event.get("type") == "message.created":
            seen.append(event["data"]["content"])


def reply(user, conversation: Conversation, text: str) -> dict:
    response = api_for(user).post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"client_id": str(uuid.uuid4()), "content": text},
        format="json",
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


def test_two_managers_each_work_their_own_number(stack, redis_layer, monkeypatch):
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    ann, bob = plain_manager("ann"), plain_manager("bob")
    bridge = stack.bridge

    async def connect_and_receive():
        # The sockets are open before either number exists: they join the new channels live.
        ann_socket, bob_socket = await open_socket(ann), await open_socket(bob)
        try:
            _, ann_conn = await asyncio.to_thread(connect_manager, stack, ann.username, ANN_PHONE)
            _, bob_conn = await asyncio.to_thread(connect_manager, stack, bob.username, BOB_PHONE)
            rooms = {}
            for conn, customer, name in (
                (ann_conn, ANN_CUSTOMER, "Carla"),
                (bob_conn, BOB_CUSTOMER, "Dieter"),
            ):
                rooms[name] = await asyncio.to_thread(
                    bridge.create_portal, conn.matrix_user_id, customer, name=name
                )
            await asyncio.to_thread(bridge.send_text, rooms["Carla"], ANN_CUSTOMER, "for ann 1")
            await asyncio.to_thread(bridge.send_text, rooms["Dieter"], BOB_CUSTOMER, "for bob 1")
            await asyncio.to_thread(bridge.send_text, rooms["Carla"], ANN_CUSTOMER, "for ann 2")
            await asyncio.to_thread(bridge.send_text, rooms["Dieter"], BOB_CUSTOMER, "for bob 2")
            ann_seen, bob_seen = [], []
            await created_messages(ann_socket, ann_seen, lambda s: "for ann 2" in s)
            await created_messages(bob_socket, bob_seen, lambda s: "for bob 2" in s)
        finally:
            await ann_socket.disconnect()
            await bob_socket.disconnect()
        return ann_conn, bob_conn, rooms, ann_seen, bob_seen

    ann_conn, bob_conn, rooms, ann_seen, bob_seen = asyncio.run(connect_and_receive())
    assert ann_seen == ["for ann 1", "for ann 2"]
    assert bob_seen == ["for bob 1", "for bob 2"]

    # Each number is its own channel, named after it and its manager, in the manager's team.
    ann_channel = WhatsAppNumber.objects.get(connection=ann_conn).channel
    bob_channel = WhatsAppNumber.objects.get(connection=bob_conn).channel
    who = ann.get_full_name() or ann.username
    assert ann_channel.name == f"WhatsApp +1 555 765 4321 ({who})"
    assert (ann_channel.address, bob_channel.address) == ("+1 555 765 4321", "+1 555 000 0002")
    assert list(ann_channel.teams.all()) == list(ann.teams.all())
    assert list(bob_channel.teams.all()) == list(bob.teams.all())
    assert Channel.objects.filter(kind=Channel.Kind.WHATSAPP).count() == 2

    # Through the API, each sees only their own customer, and the number it came in on.
    carla = Conversation.objects.get(external_id=rooms["Carla"])
    dieter = Conversation.objects.get(external_id=rooms["Dieter"])
    assert (carla.channel_id, dieter.channel_id) == (ann_channel.pk, bob_channel.pk)
    ann_list = api_for(ann).get("/api/v1/conversations/").json()["results"]
    bob_list = api_for(bob).get("/api/v1/conversations/").json()["results"]
    assert [c["id"] for c in ann_list] == [carla.pk]
    assert [c["id"] for c in bob_list] == [dieter.pk]
    assert ann_list[0]["channel"]["address"] == "+1 555 765 4321"
    assert api_for(ann).get(f"/api/v1/conversations/{dieter.pk}/").status_code == 404
    detail = api_for(bob).get(f"/api/v1/conversations/{dieter.pk}/").json()
    assert (detail["channel"]["address"], detail["reply_unavailable"]) == ("+1 555 000 0002", "")

    # Each reply leaves from the number its chat belongs to (the puppet of that login).
    reply(ann, carla, "ann answers carla")
    reply(bob, dieter, "bob answers dieter")
    bridge.wait_delivered(2)
    # Staff share Bob's number with Ann's team; what Ann writes there still leaves from Bob's.
    bob_channel.teams.add(*ann.teams.all())
    reply(ann, dieter, "ann helps out on bob's number")
    bridge.wait_delivered(3)
    sent_by = {d["content"]["body"]: (d["sender"], d["room_id"]) for d in bridge.delivered}
    assert sent_by == {
        "ann answers carla": (ann_conn.matrix_user_id, rooms["Carla"]),
        "bob answers dieter": (bob_conn.matrix_user_id, rooms["Dieter"]),
        "ann helps out on bob's number": (bob_conn.matrix_user_id, rooms["Dieter"]),
    }
    assert bridge.portals[rooms["Carla"]].receiver == ANN_PHONE
    assert bridge.portals[rooms["Dieter"]].receiver == BOB_PHONE

    # A burst of 20 replies; the bridge acknowledges each with a status but, like a homeserver
    # that keeps only the latest receipt, sends one receipt for the last: all 20 are delivered.
    real_request = bridge._request
    held_receipts = []

    async def without_bot_receipts(method, path, *, user_id=None, **kwargs):
        if "/receipt/m.read/" in path and user_id == bridge.bot_mxid:
            held_receipts.append(path)
            return {}
        return await real_request(method, path, user_id=user_id, **kwargs)

    monkeypatch.setattr(bridge, "_request", without_bot_receipts)
    before = len(bridge.delivered_in(rooms["Carla"]))
    burst = [reply(ann, carla, f"burst {n}")["id"] for n in range(20)]
    bridge.wait_delivered(3 + 20, timeout=60)
    # The bridge answers each with a status, then (held here) its receipt.
    wait_until(lambda: len(held_receipts) == 20, timeout=60, what="the bridge's 20 receipts, held")
    wait_until(
        lambda: Message.objects.filter(pk__in=burst, status=Message.Status.SENT).count() == 20,
        what="20 replies sent (SUCCESS statuses)",
    )
    monkeypatch.setattr(bridge, "_request", real_request)
    last = bridge.delivered_in(rooms["Carla"])[-1]
    assert last["content"]["body"] == "burst 19" and len(bridge.delivered_in(rooms["Carla"])) == (
        before + 20
    )
    bridge._run(
        bridge._request(
            "POST",
            f"/_matrix/client/v3/rooms/{rooms['Carla']}/receipt/m.read/{last['event_id']}",
            user_id=bridge.bot_mxid,
            json_body={},
        )
    )
    wait_until(
        lambda: Message.objects.filter(pk__in=burst, status=Message.Status.DELIVERED).count() == 20,
        what="all 20 replies delivered after one receipt",
    )
    # Carla reads up to the 10th: the first ten are read, the rest stay delivered.
    tenth = Message.objects.get(pk=burst[9]).external_id
    bridge.read_by_ghost(rooms["Carla"], tenth)
    wait_until(
        lambda: Message.objects.filter(pk__in=burst, status=Message.Status.READ).count() == 10,
        what="ten read",
    )
    assert set(Message.objects.filter(pk__in=burst[10:]).values_list("status", flat=True)) == {
        Message.Status.DELIVERED
    }
    assert Message.objects.get(pk=burst[9]).status == Message.Status.READ

    # Ann logs her number out: its history stays readable, replies are refused up front.
    pushes = matrix_transactions_done()
    connect.logout(ann)
    # The bridge answers "Logged out"; let its push land before the test's data is flushed.
    wait_until(lambda: ann_conn.matrix_user_id not in bridge.logins, what="the bridge logs out")
    wait_until(lambda: matrix_transactions_done() > pushes, what="its notice pushed")
    detail = api_for(ann).get(f"/api/v1/conversations/{carla.pk}/").json()
    assert "read-only" in detail["reply_unavailable"]
    assert "+1 555 765 4321" in detail["reply_unavailable"]
    assert (
        len(api_for(ann).get(f"/api/v1/conversations/{carla.pk}/messages/").json()["results"]) > 20
    )
    delivered = len(bridge.delivered)
    failed = reply(ann, carla, "after logout")
    message = Message.objects.get(pk=failed["id"])
    assert message.status == Message.Status.FAILED
    assert "read-only" in message.failure_reason
    assert len(bridge.delivered) == delivered
