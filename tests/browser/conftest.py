"""Browser tests: Debian's Chromium through Playwright against the app serving the test database.

The server is docker-compose.yml's `ws` command (uvicorn: the websocket server compose deploys,
serving the pages too) in a subprocess on the test database, with the Redis channel layer, so an
ingest_message() call in the test process reaches the page through the real websocket path.
"""

import os
import re
import socket
import struct
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.compose_commands import compose_command

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Where the shared live server reads media files: tests that store files for it write there.
LIVE_SERVER = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def requirements_met():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set: the live server and the test share the Redis layer")
    if connection.vendor != "postgresql" or not os.environ.get("DATABASE_URL"):
        pytest.skip("the live server needs the PostgreSQL test database (set DATABASE_URL)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(settings_dict) -> str:
    """DATABASE_URL with the test database's name (host, port and socket as given)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings_dict["NAME"]))


@pytest.fixture(scope="module")
def live_server_url(
    request, requirements_met, django_db_setup, django_db_blocker, tmp_path_factory
):
    with django_db_blocker.unblock():
        database_url = _database_url(connection.settings_dict)
    port = _free_port()
    media = tmp_path_factory.mktemp("media")
    LIVE_SERVER["media_root"] = str(media)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media),
        "DJANGO_DEBUG": "true",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "8",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    ARTIFACTS.mkdir(exist_ok=True)
    # One log per test module: a failure's server side is still there after the suite.
    log = open(ARTIFACTS / f"server-{request.module.__name__.rsplit('.', 1)[-1]}.log", "w")
    process = subprocess.Popen(
        compose_command("ws", port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the server did not start, see {log.name}") from None
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(autouse=True)
def server_password_hashers(settings):
    """Passwords the live server can check (the suite's fast MD5 hasher is not in its list)."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture(scope="module")
def chromium(requirements_met):
    from playwright.sync_api import expect, sync_playwright

    # Bounded waits, with room for a busy shared machine (CI runs beside other work).
    expect.set_options(timeout=10_000)

    # Playwright's sync API keeps an event loop in this thread; Django's ORM calls from the
    # tests are still plain synchronous calls. Only for these tests, never the whole session.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def save(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    return save


def login(context, base_url: str, username: str, password: str = "switchboard"):
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{base_url}/inbox/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(base_url) + r"/inbox/"))
    page.wait_for_selector("#live[data-state=live]")
    return page


def png_bytes(width: int = 64, height: int = 40) -> bytes:
    """A valid PNG made here (a blue-to-green gradient), no imaging library needed."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((20, 4 * x % 256, 200 - 3 * y % 200)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def serve_with(requirements_met, django_db_setup, django_db_blocker, tmp_path):
    """Another server on the test database with other settings (`serve_with(REDIS_URL=...)`
    gives a URL), for tests that break what the shared live server depends on;
    `serve_with.stop(url)` stops one as compose does (SIGTERM), `serve_with(port=…)` starts one
    again where it was."""
    with django_db_blocker.unblock():
        database_url = _database_url(connection.settings_dict)
    processes = []

    def serve(port: int | None = None, **overrides) -> str:
        port = port or _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(tmp_path),
            "DJANGO_DEBUG": "true",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            **overrides,
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        log = open(tmp_path / f"server-{port}.log", "a")
        process = subprocess.Popen(
            compose_command("ws", port),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start, see {log.name}") from None
                time.sleep(0.2)

    def stop(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        for process, log in processes:
            if f"server-{port}.log" in log.name and process.poll() is None:
                process.terminate()
                process.wait(timeout=40)  # compose's --timeout-graceful-shutdown is 30 s

    serve.stop = stop
    yield serve
    for process, log in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
