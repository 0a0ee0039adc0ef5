"""A client that stops reading, through the real ASGI servers (compose's `ws` service, uvicorn,
and daphne, which the other live tests serve with) and real TCP:

- it holds up no other socket: uvicorn makes the application's send wait while a connection's
  write buffer is full, and the hub hands each batch to the sockets in turn;
- it gets the 4429 close frame with its reason when it reads again, not a bare TCP close.

The client is a raw socket speaking RFC 6455 by hand, with a small receive buffer, so that
"not reading" really leaves the bytes in the kernel and the server's buffers.
"""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from communications.consumers import CLOSE_TOO_SLOW, TOO_SLOW_REASON
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from tests.compose_commands import compose_command
from tests.reliability import live

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
BIG = 100_000  # bytes of text per message
DEFAULT_LIMIT = 2 * 1024 * 1024  # WEBSOCKET_SEND_BUFFER_BYTES's default
# Above the most the kernel buffers for one connection here (net.ipv4.tcp_wmem's maximum,
# 4 MiB): the socket's write buffer fills before the application's limit is reached, so
# uvicorn's flow control makes sending to the client that stopped reading wait.
BEYOND_KERNEL_LIMIT = 8 * 1024 * 1024


def _server_command(server: str, port: int) -> list[str]:
    if server == "compose-ws":
        return compose_command("ws", port)
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)] + [
        "crm.asgi:application"
    ]


@contextmanager
def _serving(server: str, tmp_path: Path, **settings_env: str):
    live.require_postgres_and_redis()  # the server and this test share both
    env = live.server_env(
        MEDIA_ROOT=str(tmp_path), DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4", **settings_env
    )
    port = live.free_port()
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen(
            _server_command(server, port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            live.wait_for_port(port, process, 30)
            yield port
        finally:
            live.stop(process)


SERVERS = pytest.mark.parametrize("server", ["compose-ws", "daphne"])


class RawWebsocket:
    def __init__(self, port: int, cookie: str, *, small_buffer: bool = True):
        self.sock = socket.socket()
        if small_buffer:
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


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _flood(channel, count: int) -> None:
    sender = InboundSender(external_id="big-sender", name="Big")
    for n in range(count):
        ingest_message(channel, InboundMessage(sender=sender, content=f"{n} " + "x" * BIG))


def _read_until_closing(ws: RawWebsocket) -> None:
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


@SERVERS
@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_reading_gets_the_4429_frame(server, world, tmp_path):
    with _serving(server, tmp_path) as port:
        ws = RawWebsocket(port, _cookie(world["alice"]))
        assert ws.text()["type"] == "ready"

        # Stop reading, past the server's send buffer limit.
        _flood(world["a"], 3 * DEFAULT_LIMIT // BIG)
        time.sleep(3)  # the server decides meanwhile; daphne's own close timeout is 1 s

        # Read again, as a tab that was busy for a few seconds does.
        _read_until_closing(ws)


@SERVERS
@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_reading_holds_up_no_other_socket(server, world, tmp_path):
    limit = str(BEYOND_KERNEL_LIMIT)
    with _serving(server, tmp_path, WEBSOCKET_SEND_BUFFER_BYTES=limit) as port:
        _two_sockets_one_stuck(port, world)


def _two_sockets_one_stuck(port: int, world) -> None:
    cookie = _cookie(world["alice"])
    reader = RawWebsocket(port, cookie, small_buffer=False)
    assert reader.text()["type"] == "ready"
    stuck = RawWebsocket(port, cookie)  # joins the same groups after the reader
    assert stuck.text()["type"] == "ready"

    contents: list[str] = []
    failures: list[BaseException] = []

    def read() -> None:  # a browser tab that keeps up: reads everything, answers pings
        try:
            while True:
                message = reader.text()
                if message["type"] == "ping":
                    reader.send_text(json.dumps({"type": "pong", "seq": message["seq"]}))
                elif message["type"] == "message.created":
                    contents.append(message["data"]["content"])
                    if contents[-1] == "after":
                        return
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    count = 3 * BEYOND_KERNEL_LIMIT // BIG // 2
    _flood(world["a"], count)
    ingest_message(
        world["a"],
        InboundMessage(sender=InboundSender(external_id="later", name="Later"), content="after"),
    )
    thread.join(timeout=60)
    assert not failures, failures
    assert contents and contents[-1] == "after", f"the reading socket got {len(contents)} messages"
    assert len(contents) == count + 1  # every message, none twice

    _read_until_closing(stuck)  # and the stuck one is told why once it reads
