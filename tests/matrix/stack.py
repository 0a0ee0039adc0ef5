"""Switchboard + a real Synapse + the bridge emulator, for the Matrix tests and the benchmark.

Extends tests/matrix_harness (not edited): a second appservice registration for Switchboard
itself — its own users exclusive (`@switchboard_*`, the managers in appservice mode) and the
bridge's ghosts non-exclusive, so Synapse pushes every portal room's events to Switchboard's
`/matrix/appservice/` endpoint too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.matrix_harness.bridge_emulator import BridgeEmulator
from tests.matrix_harness.synapse import SynapseServer

SERVER_NAME = "switchboard.test"


@dataclass
class CrmAppservice:
    as_token: str
    hs_token: str
    path: Path


def write_crm_registration(directory: Path, url: str | None, server_name: str) -> CrmAppservice:
    dom = re.escape(server_name)
    reg = {
        "id": "switchboard",
        "url": url,
        "as_token": "sb_as_" + secrets.token_urlsafe(24),
        "hs_token": "sb_hs_" + secrets.token_urlsafe(24),
        "sender_localpart": "switchboard_bot",
        "namespaces": {
            "users": [
                {"regex": f"^@switchboard_.*:{dom}$", "exclusive": True},
                {"regex": f"^@whatsapp.*:{dom}$", "exclusive": False},
            ],
            "aliases": [],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": True,
        "de.sorunome.msc2409.push_ephemeral": True,
    }
    path = directory / "switchboard-registration.yaml"
    path.write_text(json.dumps(reg, indent=2))
    return CrmAppservice(reg["as_token"], reg["hs_token"], path)


@dataclass
class Stack:
    synapse: SynapseServer
    bridge: BridgeEmulator
    crm: CrmAppservice

    def configure(self, *, auth_mode: str = "appservice", with_hs_token: bool = True):
        """Point Switchboard at this homeserver (the settings row is flushed between tests)."""
        from integrations.matrix.models import MatrixSettings

        secrets_ = {
            "registration_shared_secret": self.synapse.registration_shared_secret,
            "as_token": self.crm.as_token,
        }
        if with_hs_token:
            secrets_["hs_token"] = self.crm.hs_token
        row = MatrixSettings(
            pk=1,
            whatsapp_mode="matrix",
            homeserver_url=self.synapse.base_url,
            server_name=self.synapse.server_name,
            auth_mode=auth_mode,
            secrets=secrets_,
        )
        row.save()
        return row

    def kick_appservice(self) -> None:
        """Make Synapse retry its queued transactions to Switchboard now (it backs off)."""
        import requests

        with contextlib.suppress(requests.RequestException):
            requests.post(
                f"{self.synapse.base_url}/_matrix/client/v1/appservice/switchboard/ping",
                json={"transaction_id": secrets.token_hex(6)},
                headers={"Authorization": f"Bearer {self.crm.as_token}"},
                timeout=10,
            )


@contextlib.contextmanager
def start_stack(appservice_url: str | None) -> Iterator[Stack]:
    """appservice_url None: Synapse knows Switchboard's registration but pushes nothing."""
    directory = Path(tempfile.mkdtemp(prefix="switchboard-crm-as-"))
    crm = write_crm_registration(directory, appservice_url, SERVER_NAME)
    bridge = BridgeEmulator(SERVER_NAME)
    synapse = None
    try:
        bridge.start()
        synapse = SynapseServer(
            SERVER_NAME, app_service_config_files=[bridge.registration_path, crm.path]
        )
        synapse.start()
        bridge.connect(synapse.base_url)
        yield Stack(synapse, bridge, crm)
    finally:
        try:
            if synapse is not None:
                synapse.close()
        finally:
            bridge.close()


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    """Bounded wait on a condition read from the database (or anywhere)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


class SyncRunner:
    """`manage.py matrix_sync`'s service in a background thread, stopped like SIGTERM does."""

    def __init__(self, timeout_ms: int = 1000, refresh_seconds: float = 0.2):
        from integrations.matrix.sync import SyncService

        self.service = SyncService(timeout_ms=timeout_ms, refresh_seconds=refresh_seconds)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> SyncRunner:
        ready = threading.Event()

        def main() -> None:
            self.loop = asyncio.new_event_loop()
            ready.set()
            try:
                self.loop.run_until_complete(self.service.run())
            except BaseException as exc:  # noqa: BLE001
                self.error = exc
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=main, name="matrix-sync", daemon=True)
        self.thread.start()
        ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        assert self.loop is not None and self.thread is not None
        self.loop.call_soon_threadsafe(self.service.stop)
        self.thread.join(30)
        assert not self.thread.is_alive(), "sync service did not stop"
        assert self.error is None, self.error
