"""Realtime fixtures: the real ASGI app, a logged-in session cookie, both channel layers."""

import os
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from crm.asgi import application
from tests import factories

ORIGIN = b"http://localhost"


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    """Each test runs on the in-memory layer and on real Redis (skipped without REDIS_URL)."""
    yield from _use_layer(settings, request.param)


@pytest.fixture
def memory_layer(settings):
    yield from _use_layer(settings, "memory")


@pytest.fixture
def redis_layer(settings):
    yield from _use_layer(settings, "redis")


def _use_layer(settings, kind: str):
    if kind == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("REDIS_URL is not set: no real Redis to test the channel layer against")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": url, "socket_timeout": None}],
                    "prefix": f"test-{uuid.uuid4().hex[:8]}",
                },
            }
        }
    channel_layers.backends = {}
    yield kind
    channel_layers.backends = {}


@pytest.fixture
def world(transactional_db):
    """Two teams on two channels, a manager in each, and a superuser."""
    channel_a, channel_b = factories.ChannelFactory(), factories.ChannelFactory()
    team_a, team_b = factories.TeamFactory(), factories.TeamFactory()
    channel_a.teams.add(team_a)
    channel_b.teams.add(team_b)
    alice = factories.UserFactory(username="alice")
    bob = factories.UserFactory(username="bob")
    carol = factories.UserFactory(username="carol")
    team_a.members.add(alice, carol)
    team_b.members.add(bob)
    admin = factories.UserFactory(username="admin", is_superuser=True, is_staff=True)
    return {
        "a": channel_a,
        "b": channel_b,
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "admin": admin,
    }


@database_sync_to_async
def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


async def connect(user=None, *, query: str = "", origin: bytes = ORIGIN):
    headers = [(b"origin", origin)]
    if user is not None:
        cookie = await session_cookie(user)
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    path = "/ws/inbox/" + (f"?{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def receive(communicator, *, skip=("ping",), timeout: float = 5) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message.get("type") not in skip:
            return message


async def ready(communicator) -> dict:
    message = await receive(communicator)
    assert message["type"] == "ready", message
    return message


@database_sync_to_async
def ingest(channel, text: str, sender: str = "cust-1"):
    return ingest_message(
        channel,
        InboundMessage(sender=InboundSender(external_id=sender, name="Customer"), content=text),
    )
