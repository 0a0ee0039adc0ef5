"""Reusable pieces for tests that need Synapse + the WhatsApp bridge emulator.

In a test module or conftest::

    from tests.matrix_harness.fixtures import matrix_stack, crm_user  # noqa: F401

``matrix_stack`` (module scope) yields a :class:`MatrixStack` (``.synapse``, ``.bridge``);
``crm_user`` registers a fresh user per test and yields a :class:`CrmUser`.
:class:`NioSyncer` wraps a matrix-nio ``AsyncClient`` and accumulates what ``/sync`` returned,
so a test can wait (bounded) for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .bridge_emulator import BridgeEmulator
from .synapse import SynapseServer

SERVER_NAME = "switchboard.test"


@dataclass
class MatrixStack:
    synapse: SynapseServer
    bridge: BridgeEmulator

    @property
    def server_name(self) -> str:
        return self.synapse.server_name

    @property
    def base_url(self) -> str:
        return self.synapse.base_url


@dataclass
class CrmUser:
    user_id: str
    username: str
    password: str
    access_token: str
    device_id: str


@contextlib.contextmanager
def start_stack(server_name: str = SERVER_NAME, **bridge_kwargs: Any) -> Iterator[MatrixStack]:
    """Start the emulator's endpoint, then Synapse with its registration; stop both at exit."""
    bridge = BridgeEmulator(server_name, **bridge_kwargs)
    synapse: SynapseServer | None = None
    try:
        bridge.start()
        synapse = SynapseServer(server_name, app_service_config_files=[bridge.registration_path])
        synapse.start()
        bridge.connect(synapse.base_url)
        yield MatrixStack(synapse, bridge)
    finally:
        try:
            if synapse is not None:
                synapse.close()
        finally:
            bridge.close()


def new_crm_user(stack: MatrixStack, prefix: str = "agent") -> CrmUser:
    username = f"{prefix}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    r = stack.synapse.register_user(username, password)
    return CrmUser(r["user_id"], username, password, r["access_token"], r["device_id"])


@pytest.fixture(scope="module")
def matrix_stack() -> Iterator[MatrixStack]:
    with start_stack() as stack:
        yield stack


@pytest.fixture
def crm_user(matrix_stack: MatrixStack) -> CrmUser:
    return new_crm_user(matrix_stack)


@dataclass
class NioSyncer:
    """Accumulates /sync results of a matrix-nio AsyncClient (raw event dicts)."""

    client: Any  # nio.AsyncClient
    next_batch: str | None = None
    timeline_limit: int = 200
    gaps: list[str] = field(default_factory=list)  # rooms whose timeline was limited
    timeline: dict[str, list[dict]] = field(default_factory=dict)
    state: dict[str, list[dict]] = field(default_factory=dict)
    ephemeral: dict[str, list[Any]] = field(default_factory=dict)  # nio event objects
    invites: dict[str, list[dict]] = field(default_factory=dict)

    async def sync_once(self, timeout_ms: int = 500) -> None:
        import nio

        resp = await self.client.sync(
            timeout=timeout_ms,
            since=self.next_batch,
            full_state=False,
            sync_filter={"room": {"timeline": {"limit": self.timeline_limit}}},
        )
        if self.next_batch is not None:
            for room_id, info in resp.rooms.join.items():
                if info.timeline.limited:
                    self.gaps.append(room_id)
        if not isinstance(resp, nio.SyncResponse):
            raise AssertionError(f"sync failed: {resp}")
        self.next_batch = resp.next_batch
        for room_id, info in resp.rooms.invite.items():
            self.invites.setdefault(room_id, []).extend(_invite_dict(e) for e in info.invite_state)
        for room_id, info in resp.rooms.join.items():
            self.timeline.setdefault(room_id, []).extend(e.source for e in info.timeline.events)
            self.state.setdefault(room_id, []).extend(e.source for e in info.state)
            self.ephemeral.setdefault(room_id, []).extend(info.ephemeral)

    async def wait(
        self, predicate: Callable[[NioSyncer], Any], timeout: float = 15.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.wait_for(
                self.sync_once(timeout_ms=int(min(left, 1.0) * 1000)), timeout=left + 5
            )

    def events(self, room_id: str, event_type: str | None = None) -> list[dict]:
        return [
            e
            for e in self.timeline.get(room_id, [])
            if event_type is None or e.get("type") == event_type
        ]

    def find(self, room_id: str, pred: Callable[[dict], bool]) -> dict | None:
        return next((e for e in self.timeline.get(room_id, []) if pred(e)), None)

    async def wait_event(
        self, room_id: str, pred: Callable[[dict], bool], timeout: float = 15.0, what: str = "event"
    ) -> dict:
        return await self.wait(lambda s: s.find(room_id, pred), timeout, what)


def _invite_dict(e: Any) -> dict:
    d = dict(getattr(e, "source", None) or {})
    if isinstance(e, nio_member_event_types()):
        d.setdefault("type", "m.room.member")
    for attr in ("sender", "state_key", "content"):
        if attr not in d and hasattr(e, attr):
            d[attr] = getattr(e, attr)
    return d


def nio_member_event_types() -> tuple[type, ...]:
    import nio

    return (nio.InviteMemberEvent,)


def body_is(text: str, msgtype: str | None = None) -> Callable[[dict], bool]:
    def pred(e: dict) -> bool:
        c = e.get("content") or {}
        return (
            e.get("type") == "m.room.message"
            and c.get("body") == text
            and (msgtype is None or c.get("msgtype") == msgtype)
        )

    return pred


def body_startswith(prefix: str) -> Callable[[dict], bool]:
    def pred(e: dict) -> bool:
        c = e.get("content") or {}
        return e.get("type") == "m.room.message" and str(c.get("body", "")).startswith(prefix)

    return pred
