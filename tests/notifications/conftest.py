"""Web Push against a local push service: pytest-httpserver records every push it receives;
`Browser` plays the subscribing browser (its own P-256 key and auth secret), so a test can
decrypt what was sent exactly as the browser would."""

import base64
import json
import os
import re
from dataclasses import dataclass

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from communications.notifications import push
from communications.notifications.models import PushSubscription
from tests import factories


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A push subscriber's keys: what PushManager.subscribe() makes in a real browser."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> "Browser":
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def keys(self) -> dict:
        return {"p256dh": self.p256dh, "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


@pytest.fixture
def vapid_keys(settings):
    public, private = push.generate_keys()
    settings.VAPID_PUBLIC_KEY = public
    settings.VAPID_PRIVATE_KEY = private
    settings.VAPID_SUBJECT = "mailto:ops@switchboard.test"
    settings.WEBPUSH_ENDPOINT_HOSTS = ["fcm.googleapis.com", "127.0.0.1", "localhost"]
    return public, private


@pytest.fixture
def push_service(httpserver):
    """The local push service: answers 201 Created to every POST unless told otherwise."""
    httpserver.expect_request(re.compile("^/push/"), method="POST").respond_with_data(
        "", status=201
    )
    return httpserver


@pytest.fixture
def subscribe(push_service):
    """A subscription of `user` to the local push service: (subscription, browser)."""

    def make(user, name: str = "", *, path: str = ""):
        browser = Browser.new()
        name = name or f"{user.username}-{PushSubscription.objects.count()}"
        subscription = PushSubscription.objects.create(
            user=user,
            endpoint=push_service.url_for(path or f"/push/{name}"),
            p256dh=browser.p256dh,
            auth=b64url(browser.auth),
        )
        return subscription, browser

    return make


@pytest.fixture
def team_channel(db):
    """A channel, its team, and two managers of it: (channel, alice, bob)."""
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory()
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    bob = factories.UserFactory(username="bob", first_name="Bob")
    team.members.add(alice, bob)
    return channel, alice, bob


@pytest.fixture
def queued_retries(monkeypatch):
    """As on a real worker (not eager): retries are queued with a countdown, recorded here."""
    from communications.notifications import tasks

    conf = tasks.retry_push.app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    queued = []
    monkeypatch.setattr(
        tasks.retry_push, "apply_async", lambda args, **options: queued.append((args, options))
    )
    yield queued
    conf.task_always_eager = eager
