"""Messenger / Instagram channels pointed at a fake Graph API (pytest-httpserver), and a helper
that posts a fixture signed like Meta does."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from communications.models import Channel
from integrations.meta_signature import signature_for
from tests import factories

FIXTURES = Path(__file__).parent / "fixtures"
PAGE_ID = "108456123456789"
IG_ACCOUNT_ID = "17841400000000001"
PSID = "6543210987654321"
IGSID = "1234567890123456"
APP_SECRET = "meta-app-secret-for-tests"
PAGE_TOKEN = "EAAB-page-token"
VERIFY_TOKEN = "verify-meta"


def fixture_bytes(name: str, **subs) -> bytes:
    """A fixture with its {PLACEHOLDERS} filled: numbers replace the quoted placeholder."""
    text = (FIXTURES / name).read_text()
    for key, value in subs.items():
        if isinstance(value, int):
            text = text.replace(f'"{{{key}}}"', str(value))
        else:
            text = text.replace(f"{{{key}}}", value)
    json.loads(text)  # a fixture is JSON once filled
    return text.encode()


@pytest.fixture
def graph(httpserver, settings):
    settings.META_GRAPH_BASE = httpserver.url_for("/v21.0")
    return httpserver


def _channel(kind: str, config: dict) -> Channel:
    channel = factories.ChannelFactory(
        kind=kind,
        name=f"Shop {kind}",
        config=config,
        secrets={
            "page_access_token": PAGE_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        },
    )
    return channel


@pytest.fixture
def messenger(db, graph):
    return _channel(Channel.Kind.MESSENGER, {"page_id": PAGE_ID})


@pytest.fixture
def instagram(db, graph):
    return _channel(Channel.Kind.INSTAGRAM, {"instagram_account_id": IG_ACCOUNT_ID})


def open_conversation(channel: Channel, external_id: str, *, hours_ago: float = 1):
    conversation = factories.ConversationFactory(channel=channel, external_id=external_id)
    conversation.last_inbound_at = timezone.now() - timedelta(hours=hours_ago)
    conversation.save(update_fields=["last_inbound_at"])
    return conversation


def post_signed(client, channel, body: bytes, *, signature: str | None = None):
    headers = {}
    sig = signature_for(APP_SECRET, body) if signature is None else signature
    if sig:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sig
    return client.post(
        f"/webhooks/meta/{channel.pk}/", data=body, content_type="application/json", **headers
    )
