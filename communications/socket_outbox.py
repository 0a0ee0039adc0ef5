"""A websocket's outgoing ASGI messages, in order, sent by a task of the socket's own, so that a
client that stops reading holds up nothing but its own socket.

daphne buffers whatever the application sends. uvicorn's websocket implementations apply flow
control instead: the application's `send` waits while the connection's write buffer is full.
The hub hands each committed batch to every local socket in turn (`realtime_hub.fan_out`), so
one socket waiting there would stall every other socket of its groups in the process. Here
`put` never waits; the consumer's own limit (`WEBSOCKET_SEND_BUFFER_BYTES`, acknowledged by
pings) stops relaying to a client that does not read, which keeps the queue bounded.
"""

import asyncio
import logging
from collections import deque

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, send):
        self._send = send
        self._queue: deque[dict] = deque()
        self._waiting = asyncio.Event()
        self.closed = False  # a close was queued, or the connection is gone: later sends drop
        self._writer = asyncio.ensure_future(self._write())

    async def put(self, message: dict) -> None:
        """Queue `message` (an ASGI `websocket.*` event) behind the ones before it; returns at
        once. A coroutine, so it can stand in for the consumer's `base_send`."""
        if self.closed:
            return
        self._queue.append(message)
        if message["type"] == "websocket.close":
            self.closed = True
        self._waiting.set()

    def discard_pending(self) -> int:
        """Drop what the server has not taken yet (the frame being sent stays); returns how
        many. For a client found too slow: it gets the replay on its reconnect instead, and a
        tab that never reads again holds no more than the server's own buffers."""
        dropped = len(self._queue)
        self._queue.clear()
        return dropped

    def stop(self) -> None:
        """The connection is over: drop what was not sent and end the writer."""
        self.closed = True
        self._queue.clear()
        self._writer.cancel()

    async def _write(self) -> None:
        while True:
            await self._waiting.wait()
            while self._queue:
                message = self._queue.popleft()
                try:
                    await self._send(message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # The connection is gone (uvicorn: ClientDisconnected); the server tells the
                    # consumer with websocket.disconnect.
                    logger.debug("websocket send failed; dropping the rest", exc_info=True)
                    self.closed = True
                    self._queue.clear()
                    return
            self._waiting.clear()
