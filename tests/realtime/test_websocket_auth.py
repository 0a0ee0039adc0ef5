"""Who a websocket belongs to (crm/websocket_auth.py): the session cookie's user, read once at
connect through the real ASGI app; a session that is no longer good is refused like none.
Frames go to the server's own `send`, not through a per-frame session wrapper."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from crm.asgi import application
from crm.websocket_auth import SessionUserMiddleware

from .conftest import connect, ready, session_cookie

pytestmark = pytest.mark.asyncio


async def refused(communicator) -> bool:
    closed = await communicator.receive_output(timeout=5)
    return closed == {"type": "websocket.close", "code": 4401}


async def test_a_signed_in_manager_is_accepted(memory_layer, world):
    communicator, connected = await connect(world["alice"])
    assert connected
    await ready(communicator)
    await communicator.disconnect()


async def connect_with(cookie_value: str):
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={cookie_value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/inbox/", headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def test_a_session_from_before_a_password_change_is_refused(memory_layer, world):
    user = world["alice"]
    cookie = await session_cookie(user)
    communicator, _ = await connect_with(cookie)
    await ready(communicator)
    await communicator.disconnect()

    @database_sync_to_async
    def change_password():
        user.set_password("a new one entirely")
        user.save()

    await change_password()
    communicator, connected = await connect_with(cookie)
    assert connected and await refused(communicator)


async def test_a_deactivated_manager_is_refused(memory_layer, world):
    user = world["alice"]

    @database_sync_to_async
    def deactivate():
        user.is_active = False
        user.save(update_fields=["is_active"])

    await deactivate()
    communicator, connected = await connect(user)
    assert connected and await refused(communicator)


async def test_an_unknown_session_key_is_refused(memory_layer, world):
    communicator, connected = await connect_with("not-a-session")
    assert connected and await refused(communicator)


async def test_frames_go_to_the_servers_own_send(db):
    seen = {}

    async def inner(scope, receive, send):
        seen["send"] = send
        seen["user"] = scope["user"]

    async def server_send(message):
        pass

    scope = {"type": "websocket", "path": "/ws/inbox/", "headers": []}
    await SessionUserMiddleware(inner)(scope, None, server_send)
    assert seen["send"] is server_send
    assert not seen["user"].is_authenticated
