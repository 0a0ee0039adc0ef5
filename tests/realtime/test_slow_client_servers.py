"""A client that stops reading, through the real ASGI server (daphne, its websocket stack and
TCP), gets the 4429 close frame with its reason when it reads again, not a bare TCP close.

The client is a raw socket speaking RFC 6455 by hand, with a small receive buffer, so that
"not reading" really leaves the bytes in the kernel and daphne's buffers.
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from communications.consumers import CLOSE_TOO_SLOW, SEND_BUFFER_LIMIT, TOO_SLOW_REASON
from communications.services.ingest import InboundMessage, InboundSender, ingest_message

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def daphne_port(world, tmp_path):
    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("daphne and this test share PostgreSQL and the Redis layer")
    parts = urlsplit(os.environ["DATABASE_URL"])
    database_url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(tmp_path),
        "DJANGO_DEBUG": "true",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    log = open(tmp_path / "daphne.log", "w")
    process = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "crm.asgi:application"],
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
                raise RuntimeError("daphne did not start") from None
            time.sleep(0.2)
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


class RawWebsocket:
    def __init__(self, port: int, cookie: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /ws/inbox/ HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://127.0.0.1:{port}\r\n"
                f"Cookie: {django_settings.SESSION_COOKIE_NAME}={cookie}\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        self.sock.settimeout(10)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the TCP connection")
        return data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", self._take(8))
        return first & 0x0F, self._take(length)

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + masked)

    def text(self) -> dict:
        while True:
            opcode, payload = self.frame()
            if opcode == 1:
                return json.loads(payload)
            assert opcode in (9, 10), (opcode, payload[:100])  # protocol-level ping / pong


@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_reading_gets_the_4429_frame_through_daphne(daphne_port, world):
    client = Client()
    client.force_login(world["alice"])
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    ws = RawWebsocket(daphne_port, cookie)
    assert ws.text()["type"] == "ready"

    # Stop reading. Each event carries ~100 KB: past the server's send buffer limit.
    sender = InboundSender(external_id="big-sender", name="Big")
    for n in range(3 * SEND_BUFFER_LIMIT // 100_000):
        ingest_message(world["a"], InboundMessage(sender=sender, content=f"{n} " + "x" * 100_000))
    time.sleep(3)  # the server decides meanwhile; daphne's own close timeout is 1 s

    # Read again, as a tab that was busy for a few seconds does.
    closing = None
    while closing is None:
        message = ws.text()
        if message["type"] == "closing":
            closing = message
    assert closing == {"type": "closing", "code": CLOSE_TOO_SLOW, "reason": TOO_SLOW_REASON}
    ping = ws.text()
    assert ping["type"] == "ping"
    ws.send_text(json.dumps({"type": "pong", "seq": ping["seq"]}))
    opcode, payload = ws.frame()
    assert opcode == 8  # a close frame (daphne passes on the code, not the reason: hence
    assert struct.unpack(">H", payload[:2])[0] == CLOSE_TOO_SLOW  # the `closing` message)
    ws.sock.close()
