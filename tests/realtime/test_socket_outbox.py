"""communications/socket_outbox.py: a socket's frames in order, without ever making the caller
wait for the connection (the server test is tests/realtime/test_slow_client_servers.py)."""

import asyncio

from communications.socket_outbox import Outbox


class HeldConnection:
    """An ASGI send that waits while `open` is clear, as uvicorn's does on a full buffer."""

    def __init__(self, fail_on: str | None = None):
        self.open = asyncio.Event()
        self.sent: list[str] = []
        self.fail_on = fail_on

    async def send(self, message: dict) -> None:
        await self.open.wait()
        if self.fail_on is not None and message.get("text") == self.fail_on:
            raise OSError("connection lost")
        self.sent.append(message.get("text") or message["type"])


def frame(text: str) -> dict:
    return {"type": "websocket.send", "text": text}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_put_returns_while_the_connection_holds_and_order_is_kept():
    connection = HeldConnection()
    outbox = Outbox(connection.send)
    for text in ("a", "b", "c"):
        await asyncio.wait_for(outbox.put(frame(text)), timeout=1)  # never waits
    await settle()
    assert connection.sent == []
    connection.open.set()
    await settle()
    assert connection.sent == ["a", "b", "c"]
    await outbox.put(frame("d"))
    await settle()
    assert connection.sent == ["a", "b", "c", "d"]
    outbox.stop()


async def test_nothing_goes_after_the_close():
    connection = HeldConnection()
    connection.open.set()
    outbox = Outbox(connection.send)
    await outbox.put(frame("last"))
    await outbox.put({"type": "websocket.close", "code": 4429})
    await outbox.put(frame("too late"))
    await settle()
    assert connection.sent == ["last", "websocket.close"]
    outbox.stop()


async def test_a_lost_connection_drops_the_rest():
    connection = HeldConnection(fail_on="b")
    outbox = Outbox(connection.send)
    for text in ("a", "b", "c"):
        await outbox.put(frame(text))
    connection.open.set()
    await settle()
    assert connection.sent == ["a"]
    assert outbox.closed
    await outbox.put(frame("d"))
    await settle()
    assert connection.sent == ["a"]


async def test_stop_ends_a_writer_held_by_the_connection():
    connection = HeldConnection()
    outbox = Outbox(connection.send)
    await outbox.put(frame("a"))
    await settle()
    outbox.stop()
    await settle()
    assert outbox._writer.cancelled()
    connection.open.set()
    await settle()
    assert connection.sent == []


async def test_discarding_drops_only_what_the_server_has_not_taken():
    connection = HeldConnection()
    outbox = Outbox(connection.send)
    for text in ("in flight", "waiting 1", "waiting 2"):
        await outbox.put(frame(text))
    await settle()  # the writer took the first and waits on the connection with it
    assert outbox.discard_pending() == 2
    await outbox.put(frame("closing"))
    connection.open.set()
    await settle()
    assert connection.sent == ["in flight", "closing"]
    outbox.stop()
