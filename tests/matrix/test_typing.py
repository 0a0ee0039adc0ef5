"""Typing both ways for WhatsApp through Matrix: real Synapse, the bridge emulator, and the
inbox websocket (crm.asgi.application with the manager's session cookie) on real Redis — the
appservice push arrives in the live server's thread, so the two meet through the layer."""

import asyncio
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from communications.models import Conversation, Message
from crm.asgi import application
from tests import factories
from tests.realtime.conftest import ORIGIN, _use_layer

from .conftest import bridge_saw_typing, connect_manager
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15557654321"


@pytest.fixture
def redis_layer(settings):
    yield from _use_layer(settings, "redis")


@pytest.fixture
def chat(stack, redis_layer):
    """A connected manager who sees the WhatsApp channel, and a chat with one message."""
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    user, connection = connect_manager(stack, f"typing-{time.monotonic_ns()}")
    room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Dana")
    first = stack.bridge.send_text(room, CUSTOMER, "is my parcel on its way?")
    wait_until(lambda: Message.objects.filter(external_id=first).exists(), what="first message")
    conversation = Conversation.objects.select_related("channel").get(external_id=room)
    team = factories.TeamFactory()
    conversation.channel.teams.add(team)
    team.members.add(user)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return {
        "user": user,
        "connection": connection,
        "room": room,
        "conversation": conversation,
        "cookie": cookie,
    }


async def open_socket(cookie: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", ORIGIN),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    while (await communicator.receive_json_from(timeout=10)).get("type") != "ready":
        pass
    return communicator


async def next_typing(communicator: WebsocketCommunicator, timeout: float = 20.0) -> dict:
    """The next typing event on the socket, skipping pings and stored events (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no typing event reached the socket"
        message = await communicator.receive_json_from(timeout=left)
        if message.get("type") == "typing":
            return message


def test_customer_typing_reaches_the_managers_socket_and_stops(stack, chat):
    conversation = chat["conversation"]

    async def scenario():
        socket = await open_socket(chat["cookie"])
        try:
            await asyncio.to_thread(stack.bridge.send_typing, chat["room"], CUSTOMER, True)
            started = await next_typing(socket)
            await asyncio.to_thread(stack.bridge.send_typing, chat["room"], CUSTOMER, False)
            stopped = await next_typing(socket)
        finally:
            await socket.disconnect()
        return started, stopped

    started, stopped = asyncio.run(scenario())
    assert started["id"] is None
    assert started["data"] == {
        "conversation_id": conversation.pk,
        "user_id": None,
        "user_name": "Dana",
        "customer": True,
        "typing": True,
    }
    assert stopped["data"]["conversation_id"] == conversation.pk
    assert (stopped["data"]["customer"], stopped["data"]["typing"]) == (True, False)


def test_managers_typing_reaches_the_portal_room_as_their_matrix_user(stack, chat):
    room, manager_mxid = chat["room"], chat["connection"].matrix_user_id

    def bridge_saw_manager_typing():
        return bridge_saw_typing(stack, room, manager_mxid)

    assert not bridge_saw_manager_typing()

    async def scenario():
        socket = await open_socket(chat["cookie"])
        try:
            await socket.send_json_to(
                {"type": "typing", "conversation_id": chat["conversation"].pk}
            )
            await asyncio.to_thread(
                wait_until, bridge_saw_manager_typing, 20.0, "m.typing seen by the bridge"
            )
            # The manager's own typing comes back from Synapse too: it is not the customer's.
            assert await socket.receive_nothing(timeout=1.0)
        finally:
            await socket.disconnect()

    asyncio.run(scenario())


class _Clock:
    """Stands in for the consumer's `time` module: monotonic() moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def memory_layer(settings):
    yield from _use_layer(settings, "memory")


def test_typing_hook_is_throttled_per_conversation_and_its_errors_stay_off_the_socket(
    memory_layer, monkeypatch
):
    """No Synapse needed: a provider whose `send_typing` counts, then one that raises."""
    from communications import consumers, providers

    channel = factories.ChannelFactory()
    team = factories.TeamFactory()
    channel.teams.add(team)
    alice, bob = factories.UserFactory(username="t-alice"), factories.UserFactory(username="t-bob")
    team.members.add(alice, bob)
    conversation = factories.ConversationFactory(channel=channel)
    calls, fail = [], []

    class Provider:
        def __init__(self, channel):
            pass

        def send_typing(self, conv, user):
            if fail:
                raise RuntimeError("platform down")
            calls.append((conv.pk, user.pk, clock.now))  # the test waits before moving it

    monkeypatch.setattr(providers, "provider_for", Provider)
    clock = _Clock()
    monkeypatch.setattr(consumers, "time", clock)
    cookies = {}
    for user in (alice, bob):
        client = Client()
        client.force_login(user)
        cookies[user.pk] = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    async def scenario():
        typer, watcher = await open_socket(cookies[alice.pk]), await open_socket(cookies[bob.pk])
        try:

            async def type_at(now: float):
                clock.now = now
                await typer.send_json_to({"type": "typing", "conversation_id": conversation.pk})
                return await next_typing(watcher, timeout=5)  # the other manager still hears it

            await type_at(1000.0)
            await asyncio.to_thread(wait_until, lambda: len(calls) == 1, 5.0, "first hook call")
            await type_at(1001.5)  # a new presence notice, but within 3 s: no second hook call
            await type_at(1003.1)
            await asyncio.to_thread(wait_until, lambda: len(calls) >= 2, 5.0, "second hook call")
            await asyncio.sleep(0.3)  # a (wrong) extra call would show up by now
            fail.append(True)
            await type_at(1010.0)  # the hook raises: logged, the socket goes on
            seen = await type_at(1020.0)
            assert seen["data"]["user_id"] == alice.pk
        finally:
            await typer.disconnect()
            await watcher.disconnect()

    asyncio.run(scenario())
    assert calls == [(conversation.pk, alice.pk, 1000.0), (conversation.pk, alice.pk, 1003.1)]
