"""A fake api.telegram.org (pytest-httpserver) and a Telegram channel pointed at it."""

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from communications.models import Channel

FIXTURES = Path(__file__).parent / "fixtures"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
WEBHOOK_SECRET = "s3cret_token-from-setWebhook"
CHAT_ID = 111222333  # a private chat: the same number as the user


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


@pytest.fixture(autouse=True)
def no_profile_refresh(request, monkeypatch):
    """The fake Bot API expects exact requests: a new sender's background profile refresh (R12)
    would add getChat… after commit. Tests of that refresh ask for `profile_refresh`."""
    if "profile_refresh" not in request.fixturenames:
        from communications.services import profiles

        monkeypatch.setattr(profiles, "queue_refreshes", lambda channel, identities: None)


@pytest.fixture
def profile_refresh():
    """Keep ingest's background profile refresh on (see `no_profile_refresh`)."""


@pytest.fixture
def bot_api(httpserver: HTTPServer, settings):
    """The Bot API, faked at the HTTP boundary. Tests add the methods they expect."""
    settings.TELEGRAM_API_BASE = httpserver.url_for("/").rstrip("/")
    return httpserver


def method_path(method: str) -> str:
    return f"/bot{BOT_TOKEN}/{method}"


def file_path(path: str) -> str:
    return f"/file/bot{BOT_TOKEN}/{path}"


def ok(result) -> dict:
    return {"ok": True, "result": result}


def error(code: int, description: str, **parameters) -> dict:
    answer = {"ok": False, "error_code": code, "description": description}
    if parameters:
        answer["parameters"] = parameters
    return answer


def expect_file(bot_api, file_id: str, path: str, data: bytes):
    """getFile for `file_id` names `path`; the download answers `data`."""
    bot_api.expect_request(
        method_path("getFile"), method="POST", json={"file_id": file_id}
    ).respond_with_json(
        ok(
            {
                "file_id": file_id,
                "file_unique_id": "u" + file_id[-6:],
                "file_size": len(data),
                "file_path": path,
            }
        )
    )
    bot_api.expect_request(file_path(path), method="GET").respond_with_data(
        data, content_type="application/octet-stream"
    )


@pytest.fixture
def tg_channel(db, bot_api):
    return Channel.objects.create(
        kind=Channel.Kind.TELEGRAM,
        name="Shop bot",
        secrets={"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )


def post_update(client, channel, body, *, secret: str | None = WEBHOOK_SECRET):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {}
    if secret is not None:
        headers["HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN"] = secret
    return client.post(
        f"/webhooks/telegram/{channel.pk}/", data=body, content_type="application/json", **headers
    )
