"""`manage.py matrix_sync`: one long-polling Matrix /sync per manager's connection.

Each sync response goes through the same mapper as the appservice endpoint; `next_batch` is
saved only after its events were handled, so a crash re-reads them (the mapper is idempotent)
and nothing is skipped. Errors back off exponentially with jitter; SIGTERM finishes the batch
in hand and stops. `/health/` reports how long ago the last sync succeeded.
"""

import asyncio
import logging
import random

import nio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from . import mapper
from .client import MatrixUnavailable
from .models import MatrixConnection
from .rooms import join_and_remember
from .settings_cache import get_config

logger = logging.getLogger(__name__)

SYNC_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {
        "timeline": {"limit": 100},
        "ephemeral": {"types": ["m.receipt", "m.typing"]},
        "account_data": {"types": []},
    },
}


def backoff_delay(failures: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff with jitter in the upper half: 1, 2, 4 … 60 s."""
    return min(cap, base * 2 ** max(failures - 1, 0)) * random.uniform(0.5, 1.0)


def _receipt_content(event: nio.ReceiptEvent) -> dict:
    content: dict = {}
    for receipt in event.receipts:
        content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})[
            receipt.user_id
        ] = {"ts": receipt.timestamp}
    return content


def process_sync_response(connection_id: int, response: nio.SyncResponse) -> int:
    """Invites → join; timeline → mapper; receipts → statuses; then persist next_batch."""
    close_old_connections()
    connection = MatrixConnection.objects.get(pk=connection_id)
    for room_id in response.rooms.invite:
        join_and_remember(connection, room_id)
    events = []
    for room_id, info in response.rooms.join.items():
        for event in info.timeline.events:
            source = dict(event.source)
            source.setdefault("room_id", room_id)
            events.append(source)
    used = mapper.handle_events(events, source="sync")
    for room_id, info in response.rooms.join.items():
        for event in info.ephemeral:
            if isinstance(event, nio.ReceiptEvent):
                mapper.handle_receipts(room_id, _receipt_content(event))
            elif isinstance(event, nio.TypingNoticeEvent):
                mapper.handle_typing(room_id, list(event.users))
    MatrixConnection.objects.filter(pk=connection_id).update(
        sync_next_batch=response.next_batch, last_synced_at=timezone.now()
    )
    return used


class SyncService:
    def __init__(self, *, timeout_ms: int = 30000, refresh_seconds: float = 5.0):
        self.timeout_ms = timeout_ms
        self.refresh_seconds = refresh_seconds
        self.stopping = asyncio.Event()
        self.tasks: dict[int, asyncio.Task] = {}
        self.batches = 0  # handled sync responses, for tests and logs

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        try:
            while not self.stopping.is_set():
                await self._refresh_tasks()
                try:
                    await asyncio.wait_for(self.stopping.wait(), self.refresh_seconds)
                except TimeoutError:
                    pass
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def _refresh_tasks(self) -> None:
        wanted = await sync_to_async(self._connection_ids, thread_sensitive=False)()
        for connection_id in wanted - self.tasks.keys():
            self.tasks[connection_id] = asyncio.create_task(self._sync_forever(connection_id))
        for connection_id in list(self.tasks):
            if connection_id not in wanted or self.tasks[connection_id].done():
                self.tasks.pop(connection_id).cancel()

    @staticmethod
    def _connection_ids() -> set[int]:
        close_old_connections()
        if not get_config().configured:
            return set()
        return {c.pk for c in MatrixConnection.objects.all() if c.access_token}

    async def _sync_forever(self, connection_id: int) -> None:
        connection = await MatrixConnection.objects.aget(pk=connection_id)
        config = await sync_to_async(get_config, thread_sensitive=False)()
        client = nio.AsyncClient(config.homeserver_url, connection.matrix_user_id)
        client.restore_login(
            connection.matrix_user_id,
            connection.device_id or "SWITCHBOARD",
            connection.access_token,
        )
        since = connection.sync_next_batch or None
        failures = 0
        try:
            while not self.stopping.is_set():
                response = await self._sync_once(client, since)
                if response is None:  # stopping
                    return
                if not isinstance(response, nio.SyncResponse):
                    failures += 1
                    delay = backoff_delay(failures)
                    logger.warning(
                        "sync of %s failed (%s); retrying in %.1fs",
                        connection.matrix_user_id,
                        getattr(response, "message", response),
                        delay,
                    )
                    await self._sleep(delay)
                    continue
                try:
                    await sync_to_async(process_sync_response, thread_sensitive=False)(
                        connection_id, response
                    )
                except MatrixUnavailable as exc:
                    failures += 1
                    delay = backoff_delay(failures)
                    logger.warning("sync batch deferred (%s); again in %.1fs", exc, delay)
                    await self._sleep(delay)
                    continue  # same `since`: the batch is read again
                failures = 0
                since = response.next_batch
                self.batches += 1
        finally:
            await client.close()

    async def _sync_once(self, client: nio.AsyncClient, since: str | None):
        sync = asyncio.create_task(
            client.sync(timeout=self.timeout_ms, since=since, sync_filter=SYNC_FILTER)
        )
        stop = asyncio.create_task(self.stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {sync, stop},
                timeout=self.timeout_ms / 1000 + 30,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop.cancel()
        if sync not in done:
            sync.cancel()
            await asyncio.gather(sync, return_exceptions=True)
            if self.stopping.is_set():
                return None
            return nio.SyncError("sync timed out")
        try:
            return sync.result()
        except Exception as exc:  # connection refused, reset…: nio raises these
            return nio.SyncError(f"{exc.__class__.__name__}: {exc}")

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass


def sync_health() -> dict:
    config = get_config()
    if not config.configured or config.whatsapp_mode != "matrix":
        return {"status": "not configured"}
    newest = (
        MatrixConnection.objects.exclude(last_synced_at=None)
        .order_by("-last_synced_at")
        .values_list("last_synced_at", flat=True)
        .first()
    )
    if newest is None:
        return {"status": "not configured", "detail": "no manager has synced yet"}
    lag = (timezone.now() - newest).total_seconds()
    max_lag = settings.MATRIX_SYNC_MAX_LAG
    return {"status": "ok" if lag <= max_lag else "stale", "lag_s": round(lag, 1)}
