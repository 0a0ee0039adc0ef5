"""A fake Graph API on loopback, and a WhatsApp channel pointed at it."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.utils import timezone

from communications.models import Channel
from integrations.matrix import settings_cache
from integrations.whatsapp_cloud.webhook import signature_for
from tests import factories

FIXTURES = Path(__file__).parent / "fixtures"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "app-secret-for-tests"
ACCESS_TOKEN = "EAAG-test-token"
VERIFY_TOKEN = "verify-me"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeGraphApi:
    """A real HTTP server standing in for graph.facebook.com: records every request."""

    def __init__(self):
        self.requests: list[dict] = []
        # Answers for /…/messages, in order, as (status, json body); then a success.
        self.message_answers: list[tuple[int, dict]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        # Statuses the media lookup of an id answers first, in order, before it succeeds.
        self.media_failures: dict[str, list[int]] = {}
        # Called with each request's record after it is recorded, before it is answered.
        self.on_request = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self, body: bytes = b""):
                outer.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if outer.on_request is not None:
                    outer.on_request(outer.requests[-1])

            def _answer(self, status: int, body: bytes, content_type: str):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._record(body)
                if not self.path.endswith("/messages"):
                    return self._answer(404, b"{}", "application/json")
                if outer.message_answers:
                    status, answer = outer.message_answers.pop(0)
                else:
                    status, answer = (
                        200,
                        {
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": "x", "wa_id": "x"}],
                            "messages": [{"id": f"wamid.OUT{len(outer.requests)}"}],
                        },
                    )
                self._answer(status, json.dumps(answer).encode(), "application/json")

            def do_GET(self):
                self._record()
                if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                    return self._answer(401, b'{"error":{"code":190}}', "application/json")
                parts = self.path.strip("/").split("/")
                failures = outer.media_failures.get(parts[-1])
                if parts[0] != "media-bytes" and failures:
                    status = failures.pop(0)
                    return self._answer(status, b'{"error":{"code":2}}', "application/json")
                if parts[0] == "media-bytes" and parts[-1] in outer.media:
                    data, mime_type = outer.media[parts[-1]]
                    return self._answer(200, data, mime_type)
                if parts[-1] in outer.media:
                    data, mime_type = outer.media[parts[-1]]
                    info = {
                        "url": f"{outer.base}/media-bytes/{parts[-1]}",
                        "mime_type": mime_type,
                        "file_size": len(data),
                        "id": parts[-1],
                        "messaging_product": "whatsapp",
                    }
                    return self._answer(200, json.dumps(info).encode(), "application/json")
                self._answer(404, b'{"error":{"message":"no such media"}}', "application/json")

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def sends(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph():
    server = FakeGraphApi()
    yield server
    server.close()


@pytest.fixture
def wa_channel(db, graph):
    return Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Cloud",
        config={"phone_number_id": PHONE_NUMBER_ID, "graph_api_base": f"{graph.base}/v21.0"},
        secrets={
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        },
    )


@pytest.fixture
def classical_mode(settings):
    settings.WHATSAPP_MODE = "classical"
    settings_cache.invalidate()
    yield
    settings_cache.invalidate()


@pytest.fixture
def wa_conversation(wa_channel):
    conversation = factories.ConversationFactory(channel=wa_channel, external_id="16505551234")
    conversation.last_inbound_at = timezone.now() - timedelta(hours=1)
    conversation.save(update_fields=["last_inbound_at"])
    return conversation


def post_signed(client, channel, body: bytes, *, signature: str | None = None):
    headers = {}
    sig = signature_for(APP_SECRET, body) if signature is None else signature
    if sig:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sig
    return client.post(
        f"/webhooks/whatsapp/{channel.pk}/", data=body, content_type="application/json", **headers
    )


# --- Graph faked with pytest-httpserver (the newer tests): the fake checks what we send. ---
BUSINESS_ACCOUNT_ID = "102290129340398"


@pytest.fixture
def hs_channel(db, httpserver):
    """A Cloud API channel whose Graph API base URL points at pytest-httpserver."""
    return Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Cloud",
        config={
            "phone_number_id": PHONE_NUMBER_ID,
            "business_account_id": BUSINESS_ACCOUNT_ID,
            "graph_api_base": httpserver.url_for("/v21.0"),
        },
        secrets={
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        },
    )


@pytest.fixture
def hs_conversation(hs_channel):
    conversation = factories.ConversationFactory(channel=hs_channel, external_id="16505551234")
    conversation.last_inbound_at = timezone.now() - timedelta(hours=1)
    conversation.save(update_fields=["last_inbound_at"])
    return conversation


def sent_message(wamid: str) -> dict:
    """Meta's answer to a POST …/messages that it accepted."""
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": wamid}],
    }


BEARER = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
