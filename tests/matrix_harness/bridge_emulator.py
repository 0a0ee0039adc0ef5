"""An emulator of the mautrix-whatsapp bridge (bridgev2), as an appservice for a real Synapse.

It behaves, as seen from Matrix, like mautrix-whatsapp does (see shared/MATRIX.md): the bot
``@whatsappbot:<domain>``, ghosts ``@whatsapp_<digits>`` / ``@whatsapp_lid-<digits>``, portal
rooms with ``m.bridge`` state, the ``login qr`` dialogue in a management room, relaying the CRM
user's messages "to WhatsApp" (recorded in ``delivered``) with ``com.beeper.message_send_status``
and ``m.read`` answers, failures, and going down.

It runs its own aiohttp server (the appservice endpoint) in a background thread with its own event
loop, so synchronous tests can drive it. Every action ``foo(...)`` also exists as a coroutine
``afoo(...)`` for async tests (it runs on the emulator's loop and is awaited from yours).

Typical use::

    emu = BridgeEmulator(server_name="switchboard.test")
    emu.start()
    hs = SynapseServer("switchboard.test", app_service_config_files=[emu.registration_path])
    hs.start()
    emu.connect(hs.base_url)
    room = emu.create_portal("@agent:switchboard.test", "15551234567", name="Alice")
    emu.send_text(room, "15551234567", "hello")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from .synapse import free_port

log = logging.getLogger(__name__)

PROTOCOL = {
    "id": "whatsapp",
    "displayname": "WhatsApp",
    "external_url": "https://www.whatsapp.com/",
}
DEFAULT_OWN_PHONE = "15550000001"


class MatrixRequestError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{method} {path} -> {status}: {body}")


@dataclass
class Portal:
    room_id: str
    crm_user_id: str
    ghost: str  # mxid of the contact's ghost (DMs); first ghost for groups
    chat_jid: str
    receiver: str  # own phone digits (fi.mau.receiver)
    name: str | None = None
    room_type: str = "dm"
    ghosts: list[str] = field(default_factory=list)


@dataclass
class LoginProcess:
    user_id: str
    room_id: str | None  # management room; None for logins over the provisioning API
    flow: str  # "qr" | "phone"
    qr_event_id: str | None = None
    qr_codes: list[str] = field(default_factory=list)
    task: asyncio.Task | None = None
    waiting_for_phone: bool = False
    pairing_code: str | None = None
    done: bool = False
    login_id: str = field(default_factory=lambda: secrets.token_hex(8))
    result: str | None = None  # "complete" | "failed" | "cancelled"
    failure_reason: str | None = None
    phone: str | None = None
    changed: asyncio.Event | None = None  # set (and replaced) on every change

    def notify(self) -> None:
        if self.changed is not None:
            self.changed.set()
        self.changed = asyncio.Event()


def digits_of(phone: str) -> str:
    return re.sub(r"\D", "", phone)


# ---------------------------------------------------------------------------- PNG helpers
def _png_bytes(rows: list[bytes], width: int, height: int) -> bytes:
    """Encode 8-bit grayscale rows as a PNG."""
    raw = b"".join(b"\x00" + r for r in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def qr_png(data: str, size: int = 512) -> bytes:
    """A size x size PNG of a QR code for ``data`` (uses segno if installed)."""
    try:
        import segno

        matrix = [list(r) for r in segno.make(data, error="l", micro=False).matrix]
    except ImportError:  # any valid PNG will do: a deterministic pseudo-pattern
        n = 41
        h = zlib.crc32(data.encode())
        matrix = [[(h >> ((x * 7 + y * 13) % 31)) & 1 for x in range(n)] for y in range(n)]
    n = len(matrix)
    border = 4
    total = n + 2 * border
    rows = []
    for py in range(size):
        my = py * total // size - border
        row = bytearray(size)
        for px in range(size):
            mx = px * total // size - border
            dark = 0 <= my < n and 0 <= mx < n and matrix[my][mx]
            row[px] = 0 if dark else 255
        rows.append(bytes(row))
    return _png_bytes(rows, size, size)


def solid_png(width: int = 64, height: int = 48, shade: int = 128) -> bytes:
    return _png_bytes([bytes([shade]) * width] * height, width, height)


# ---------------------------------------------------------------------------- the emulator
def _dual(impl: Callable) -> tuple[Callable, Callable]:
    """Make a sync method and an async method from an async implementation."""

    @functools.wraps(impl)
    def sync(self: BridgeEmulator, *args: Any, **kwargs: Any) -> Any:
        return self._run(impl(self, *args, **kwargs))

    @functools.wraps(impl)
    async def asyn(self: BridgeEmulator, *args: Any, **kwargs: Any) -> Any:
        return await self._arun(impl(self, *args, **kwargs))

    return sync, asyn


class BridgeEmulator:
    """A mautrix-whatsapp look-alike appservice. See the module docstring.

    Parameters:
        server_name: the homeserver domain.
        homeserver_url: Synapse's base URL (or call ``connect(url)`` later).
        own_phone: default ``fi.mau.receiver`` (the CRM user's own WhatsApp number, digits).
        qr_first_refresh_seconds / qr_refresh_seconds / qr_refreshes: QR edit timings
            (real bridge: 60, 20, 5; defaults here are short for tests).
        ghost_displayname_with_phone: use ``"<name> (+<phone>) (WA)"`` instead of ``"<name> (WA)"``.
        ghost_identifiers_in_profile: set ``com.beeper.bridge.identifiers`` on phone ghosts.
        registration_dir: where registration.yaml goes (default: a temp dir, removed on close).
    """

    def __init__(
        self,
        server_name: str = "switchboard.test",
        homeserver_url: str | None = None,
        *,
        own_phone: str = DEFAULT_OWN_PHONE,
        qr_first_refresh_seconds: float = 1.5,
        qr_refresh_seconds: float = 1.0,
        qr_refreshes: int = 5,
        ghost_displayname_with_phone: bool = False,
        ghost_identifiers_in_profile: bool = True,
        registration_dir: str | os.PathLike | None = None,
        port: int | None = None,
        request_timeout: float = 30.0,
        connect_retry_seconds: float = 30.0,
        as_token: str | None = None,
        hs_token: str | None = None,
        provisioning_secret: str | None = None,
    ) -> None:
        self.server_name = server_name
        self.homeserver_url = homeserver_url.rstrip("/") if homeserver_url else None
        self.own_phone = digits_of(own_phone)
        self.qr_first_refresh_seconds = qr_first_refresh_seconds
        self.qr_refresh_seconds = qr_refresh_seconds
        self.qr_refreshes = qr_refreshes
        self.ghost_displayname_with_phone = ghost_displayname_with_phone
        self.ghost_identifiers_in_profile = ghost_identifiers_in_profile
        self.request_timeout = request_timeout
        self.connect_retry_seconds = connect_retry_seconds

        self.as_token = as_token or "wa_as_" + secrets.token_urlsafe(24)
        self.hs_token = hs_token or "wa_hs_" + secrets.token_urlsafe(24)
        self.provisioning_secret = provisioning_secret or "wa_prov_" + secrets.token_urlsafe(24)
        self.appservice_id = "whatsapp"
        self.bot_localpart = "whatsappbot"
        self.bot_mxid = f"@whatsappbot:{server_name}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.provisioning_url = f"{self.url}/_matrix/provision"

        self._own_reg_dir = registration_dir is None
        self.registration_dir = Path(registration_dir or tempfile.mkdtemp(prefix="switchboard-wa-"))
        self.registration_dir.mkdir(parents=True, exist_ok=True)
        self.registration_path = self.registration_dir / "whatsapp-registration.yaml"
        self.registration = self._registration()
        # JSON is valid YAML; no extra dependency needed.
        self.registration_path.write_text(json.dumps(self.registration, indent=2))

        # ---- observable state (read from tests; protected by self._cond)
        self._cond = threading.Condition()
        self.events_seen: list[dict] = []  # every event pushed by Synapse, in order
        self.ephemeral_seen: list[dict] = []  # receipts / typing pushed by Synapse
        self.transactions_seen: list[str] = []  # txn ids of every accepted PUT (incl. repeats)
        self.delivered: list[dict] = []  # CRM user's events "delivered to WhatsApp"
        self.failed: list[dict] = []  # CRM user's events whose relay was made to fail
        self.errors: list[str] = []  # exceptions inside the emulator's event handling
        self.down_requests = 0  # transactions answered 503 while down
        self.repeated_transactions = 0  # re-sent transactions answered {} without processing

        self.portals: dict[str, Portal] = {}
        self.management_rooms: dict[str, str] = {}  # user id -> room id
        self.logins: dict[str, str] = {}  # user id -> phone digits
        self.receivers: dict[str, str] = {}  # user id -> phone digits used in new portals
        self.logins_in_progress: dict[str, LoginProcess] = {}
        self._registered: set[str] = set()
        self._finished_logins: dict[str, LoginProcess] = {}
        self._txns_done: set[tuple[str, str]] = set()
        self._relayed: set[str] = set()
        self._fail_next: list[tuple[str, str]] = []
        self._down = False
        self._txn_counter = itertools.count(int(time.time() * 1000))

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    # ------------------------------------------------------------------ setup
    def _registration(self) -> dict[str, Any]:
        dom = re.escape(self.server_name)
        return {
            "id": self.appservice_id,
            "url": self.url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": self.bot_localpart,
            "namespaces": {
                "users": [
                    {"regex": f"^@whatsappbot:{dom}$", "exclusive": True},
                    {"regex": f"^@whatsapp_.*:{dom}$", "exclusive": True},
                ],
                "aliases": [],
                "rooms": [],
            },
            "rate_limited": False,
            "receive_ephemeral": True,
            "de.sorunome.msc2409.push_ephemeral": True,
        }

    def __enter__(self) -> BridgeEmulator:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self, timeout: float = 10.0) -> None:
        """Start the appservice HTTP server (in a background thread)."""
        if self._thread is not None:
            return
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as e:  # noqa: BLE001
                failure.append(e)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._astop())
                loop.close()

        self._thread = threading.Thread(target=main, name="bridge-emulator", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise RuntimeError("bridge emulator did not start")
        if failure:
            self._thread = None
            raise failure[0]

    async def _astart(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        )
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_put("/_matrix/app/v1/transactions/{txn_id}", self._h_transaction)
        app.router.add_put("/transactions/{txn_id}", self._h_transaction)
        app.router.add_post("/_matrix/app/v1/ping", self._h_ping)
        app.router.add_get("/_matrix/app/v1/users/{user_id}", self._h_user_query)
        app.router.add_get("/users/{user_id}", self._h_user_query)
        app.router.add_get("/_matrix/app/v1/rooms/{alias}", self._h_not_found)
        app.router.add_get("/rooms/{alias}", self._h_not_found)
        prov = "/_matrix/provision/v3"
        app.router.add_get(prov + "/login/flows", self._p_login_flows)
        app.router.add_post(prov + "/login/start/{flow}", self._p_login_start)
        app.router.add_post(
            prov + "/login/step/{login_id}/{step_id}/{step_type}", self._p_login_step
        )
        app.router.add_get(prov + "/logins", self._p_logins)
        app.router.add_get(prov + "/whoami", self._p_whoami)
        app.router.add_post(prov + "/logout/{login_id}", self._p_logout)
        app.router.add_get(prov + "/resolve_identifier/{identifier}", self._p_resolve)
        app.router.add_post(prov + "/create_dm/{identifier}", self._p_create_dm)
        app.router.add_route("*", "/{tail:.*}", self._h_not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _astop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._worker:
            self._worker.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(
                *self._tasks, *([self._worker] if self._worker else []), return_exceptions=True
            )
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if self._own_reg_dir:
            shutil.rmtree(self.registration_dir, ignore_errors=True)

    def connect(self, homeserver_url: str) -> None:
        """Tell the emulator where Synapse is (if not given to the constructor)."""
        self.homeserver_url = homeserver_url.rstrip("/")

    # ------------------------------------------------------------------ thread plumbing
    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("BridgeEmulator.start() has not been called")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("use the a*-methods from inside the emulator's loop")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout or self.request_timeout * 4)

    async def _arun(self, coro: Any) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("BridgeEmulator.start() has not been called")
        if asyncio.get_running_loop() is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._record_error(task.exception())

    def _record_error(self, exc: BaseException) -> None:
        log.warning("bridge emulator error: %r", exc)
        with self._cond:
            self.errors.append(repr(exc))
            self._cond.notify_all()

    # ------------------------------------------------------------------ waiting helpers
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait (bounded) until predicate() is truthy; returns its value. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"timed out after {timeout}s waiting for {what or predicate}"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_for_event(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """Wait for an event pushed by Synapse (in events_seen) matching predicate."""

        def find() -> dict | None:
            return next((e for e in self.events_seen if predicate(e)), None)

        return self.wait_for(find, timeout, "event")

    def wait_delivered(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Wait until at least ``count`` events were delivered; returns a copy of the list."""
        self.wait_for(lambda: len(self.delivered) >= count, timeout, f"{count} delivered")
        with self._cond:
            return list(self.delivered)

    # ------------------------------------------------------------------ HTTP client
    async def _request(
        self,
        method: str,
        path: str,
        *,
        user_id: str | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        ok_errcodes: tuple[str, ...] = (),
    ) -> dict:
        if not self.homeserver_url:
            raise RuntimeError("BridgeEmulator has no homeserver_url; call connect(url)")
        assert self._session is not None
        q: dict[str, str] = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if user_id:
            q["user_id"] = user_id
        headers = {"Authorization": f"Bearer {self.as_token}"}
        kwargs: dict[str, Any] = {"params": q, "headers": headers}
        if data is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
            kwargs["data"] = data
        elif json_body is not None or method in ("POST", "PUT"):
            kwargs["json"] = json_body if json_body is not None else {}
        deadline = time.monotonic() + self.connect_retry_seconds
        while True:
            try:
                return await self._request_once(method, path, kwargs, ok_errcodes)
            except aiohttp.ClientConnectionError as e:
                # Synapse is down (being restarted). Retry when the request never reached it,
                # or when it is idempotent (PUT with a txn id, joins, invites, receipts...).
                # The real bridge retries too.
                never_sent = isinstance(e, aiohttp.ClientConnectorError)
                idempotent = not (path.endswith("/createRoom") or "/media/" in path)
                if time.monotonic() >= deadline or not (never_sent or idempotent):
                    raise
                await asyncio.sleep(0.2)

    async def _request_once(
        self, method: str, path: str, kwargs: dict[str, Any], ok_errcodes: tuple[str, ...]
    ) -> dict:
        assert self._session is not None and self.homeserver_url
        async with self._session.request(method, self.homeserver_url + path, **kwargs) as resp:
            try:
                body = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                body = {"raw": await resp.text()}
            if resp.status == 200:
                return body if isinstance(body, dict) else {"body": body}
            if isinstance(body, dict) and body.get("errcode") in ok_errcodes:
                return body
            raise MatrixRequestError(method, path, resp.status, body)

    def _txn(self) -> str:
        return f"wa{next(self._txn_counter)}"

    # ------------------------------------------------------------------ identities
    def ghost_mxid(self, ghost: str) -> str:
        """Ghost mxid for '15551234567', '+1 555…', 'lid-123', '123@lid', '…@s.whatsapp.net'.

        An mxid is returned unchanged."""
        if ghost.startswith("@"):
            return ghost
        if ghost.endswith("@lid"):
            return f"@whatsapp_lid-{digits_of(ghost.split('@')[0])}:{self.server_name}"
        if ghost.endswith("@s.whatsapp.net"):
            ghost = ghost.split("@")[0]
        if ghost.startswith("lid-") or ghost.startswith("bot-"):
            return f"@whatsapp_{ghost}:{self.server_name}"
        return f"@whatsapp_{digits_of(ghost)}:{self.server_name}"

    def chat_jid_for(self, ghost: str) -> str:
        local = self.ghost_mxid(ghost)[1:].split(":")[0][len("whatsapp_") :]
        if local.startswith("lid-"):
            return f"{local[4:]}@lid"
        if local.startswith("bot-"):
            return f"{local[4:]}@bot"
        return f"{local}@s.whatsapp.net"

    def own_ghost(self, crm_user_id: str | None = None) -> str:
        """The ghost that stands for the CRM user's own WhatsApp account."""
        phone = (
            self.logins.get(crm_user_id or "")
            or self.receivers.get(crm_user_id or "")
            or self.own_phone
        )
        return self.ghost_mxid(phone)

    def is_bridge_user(self, user_id: str) -> bool:
        return user_id == self.bot_mxid or (
            user_id.startswith("@whatsapp_") and user_id.endswith(":" + self.server_name)
        )

    # ------------------------------------------------------------------ actions (async impls)
    async def _ensure_registered(self, user_id: str) -> None:
        if user_id == self.bot_mxid or user_id in self._registered:
            return
        localpart = user_id[1:].split(":")[0]
        await self._request(
            "POST",
            "/_matrix/client/v3/register",
            json_body={
                "type": "m.login.application_service",
                "username": localpart,
                "inhibit_login": True,
            },
            ok_errcodes=("M_USER_IN_USE",),
        )
        self._registered.add(user_id)

    async def _ensure_ghost(
        self,
        ghost: str,
        name: str | None = None,
        phone: str | None = None,
        *,
        identifiers: bool | None = None,
        displayname: str | None = None,
    ) -> str:
        """Register a ghost and (optionally) set its profile. Returns the mxid.

        ``name`` is the WhatsApp push name; the display name becomes ``"<name> (WA)"`` (or with
        ``(+phone)`` if ghost_displayname_with_phone); ``displayname`` sets it verbatim.
        ``phone`` defaults to the digits of a phone-style ghost id.
        """
        mxid = self.ghost_mxid(ghost)
        await self._ensure_registered(mxid)
        local = mxid[1:].split(":")[0][len("whatsapp_") :]
        if phone is None and local.isdigit():
            phone = local
        phone = digits_of(phone) if phone else None
        if displayname is None and (name or phone):
            shown = name or f"+{phone}"
            if self.ghost_displayname_with_phone and phone and name:
                displayname = f"{shown} (+{phone}) (WA)"
            else:
                displayname = f"{shown} (WA)"
        if displayname:
            await self._request(
                "PUT",
                f"/_matrix/client/v3/profile/{quote(mxid)}/displayname",
                user_id=mxid,
                json_body={"displayname": displayname},
            )
        if identifiers is None:
            identifiers = self.ghost_identifiers_in_profile
        if identifiers and phone:
            await self._request(
                "PUT",
                f"/_matrix/client/v3/profile/{quote(mxid)}/com.beeper.bridge.identifiers",
                user_id=mxid,
                json_body={"com.beeper.bridge.identifiers": [f"tel:+{phone}"]},
            )
        return mxid

    async def _set_ghost_avatar(self, ghost: str, data: bytes, mimetype: str = "image/png") -> str:
        mxid = await self._ensure_ghost(ghost)
        mxc = await self._upload(mxid, data, mimetype, "avatar.png")
        await self._request(
            "PUT",
            f"/_matrix/client/v3/profile/{quote(mxid)}/avatar_url",
            user_id=mxid,
            json_body={"avatar_url": mxc},
        )
        return mxc

    async def _upload(self, sender: str, data: bytes, mimetype: str, filename: str) -> str:
        await self._ensure_registered(sender)
        body = await self._request(
            "POST",
            "/_matrix/media/v3/upload",
            user_id=sender,
            params={"filename": filename},
            data=data,
            content_type=mimetype,
        )
        return body["content_uri"]

    async def _join(self, room_id: str, user_id: str) -> None:
        await self._ensure_registered(user_id)
        await self._request("POST", f"/_matrix/client/v3/join/{quote(room_id)}", user_id=user_id)

    async def _invite(self, room_id: str, user_id: str, inviter: str | None = None) -> None:
        await self._request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/invite",
            user_id=inviter or self.bot_mxid,
            json_body={"user_id": user_id},
            ok_errcodes=(),
        )

    async def _ensure_member(self, room_id: str, user_id: str) -> None:
        """Invite (as the bot) and join a bridge user, unless already joined."""
        try:
            member = await self._request(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}",
                user_id=self.bot_mxid,
            )
            if member.get("membership") == "join":
                return
        except MatrixRequestError:
            pass
        await self._ensure_registered(user_id)
        with contextlib.suppress(MatrixRequestError):
            await self._invite(room_id, user_id)
        await self._join(room_id, user_id)

    def _bridge_info(
        self, chat_jid: str, displayname: str | None, receiver: str, room_type: str
    ) -> dict:
        channel: dict[str, Any] = {"id": chat_jid, "fi.mau.receiver": receiver}
        if displayname:
            channel["displayname"] = displayname
        return {
            "bridgebot": self.bot_mxid,
            "creator": self.bot_mxid,
            "protocol": dict(PROTOCOL),
            "channel": channel,
            "com.beeper.room_type": room_type,
        }

    async def _create_portal(
        self,
        crm_user_id: str,
        ghost: str,
        chat_jid: str | None = None,
        name: str | None = None,
        *,
        phone: str | None = None,
        receiver: str | None = None,
        set_room_name: bool = False,
        extra_ghosts: list[str] | None = None,
        group: bool = False,
        invite_user: bool = True,
    ) -> str:
        """Create a portal as the bot, like mautrix-whatsapp does. Returns the room id.

        ghost: contact id ('15551234567', 'lid-…', or an mxid); ``name`` is its push name
        (sets the ghost's display name). chat_jid defaults to the ghost's JID.
        ``group=True`` makes a group_dm portal (not direct; needs a ``name``).
        """
        ghost_mxid = await self._ensure_ghost(ghost, name, phone)
        ghosts = [ghost_mxid] + [await self._ensure_ghost(g) for g in (extra_ghosts or [])]
        chat_jid = chat_jid or self.chat_jid_for(ghost_mxid)
        receiver = (
            digits_of(receiver)
            if receiver
            else (self.logins.get(crm_user_id) or self.receivers.get(crm_user_id) or self.own_phone)
        )
        room_type = "group_dm" if group else "dm"
        info = self._bridge_info(chat_jid, name, receiver, room_type)
        state_key = f"{self.server_name}/whatsapp"
        body: dict[str, Any] = {
            "preset": "private_chat",
            "visibility": "private",
            "is_direct": not group,
            "initial_state": [
                {"type": "m.bridge", "state_key": state_key, "content": info},
                {"type": "uk.half-shot.bridge", "state_key": state_key, "content": info},
            ],
            "creation_content": {},
        }
        if name and (group or set_room_name):
            body["name"] = name
        resp = await self._request(
            "POST", "/_matrix/client/v3/createRoom", user_id=self.bot_mxid, json_body=body
        )
        room_id = resp["room_id"]
        self.portals[room_id] = Portal(
            room_id, crm_user_id, ghost_mxid, chat_jid, receiver, name, room_type, ghosts
        )
        for g in ghosts:
            await self._invite(room_id, g)
            await self._join(room_id, g)
        if invite_user:
            await self._invite(room_id, crm_user_id)
        return room_id

    async def _send(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: dict,
        *,
        ts: int | float | None = None,
        txn_id: str | None = None,
    ) -> str:
        sender = self.ghost_mxid(sender)
        await self._ensure_registered(sender)
        params = {"ts": int(ts)} if ts is not None else None
        resp = await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{quote(event_type)}/"
            f"{txn_id or self._txn()}",
            user_id=sender,
            params=params,
            json_body=content,
        )
        return resp["event_id"]

    async def _send_state(
        self, room_id: str, sender: str, event_type: str, state_key: str, content: dict
    ) -> str:
        resp = await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}",
            user_id=sender,
            json_body=content,
        )
        return resp["event_id"]

    @staticmethod
    def _with_reply(content: dict, reply_to: str | None) -> dict:
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return content

    async def _send_text(
        self,
        room_id: str,
        ghost: str,
        text: str,
        *,
        ts: int | None = None,
        reply_to: str | None = None,
        html: str | None = None,
        msgtype: str = "m.text",
    ) -> str:
        """Ghost sends a text message. Returns the event id."""
        content: dict[str, Any] = {"msgtype": msgtype, "body": text}
        if html:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        return await self._send(
            room_id, ghost, "m.room.message", self._with_reply(content, reply_to), ts=ts
        )

    async def _send_media(
        self,
        room_id: str,
        ghost: str,
        kind: str,
        data: bytes,
        mimetype: str,
        filename: str,
        *,
        caption: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration_ms: int | None = None,
        ts: int | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Ghost sends media. kind: image | video | audio | voice | file | sticker.

        The bytes are uploaded to the media repo as the ghost first.
        """
        sender = self.ghost_mxid(ghost)
        mxc = await self._upload(sender, data, mimetype, filename)
        info: dict[str, Any] = {"mimetype": mimetype, "size": len(data)}
        if width is not None:
            info["w"] = width
        if height is not None:
            info["h"] = height
        if duration_ms is not None:
            info["duration"] = duration_ms
        if kind == "sticker":
            content = {"body": caption or filename, "url": mxc, "info": info}
            return await self._send(
                room_id, sender, "m.sticker", self._with_reply(content, reply_to), ts=ts
            )
        msgtype = {
            "image": "m.image",
            "video": "m.video",
            "audio": "m.audio",
            "voice": "m.audio",
            "file": "m.file",
        }[kind]
        content = {"msgtype": msgtype, "body": caption or filename, "url": mxc, "info": info}
        if caption and caption != filename:
            content["filename"] = filename
        if kind == "voice":
            content["org.matrix.msc3245.voice"] = {}
            content["org.matrix.msc1767.audio"] = {"duration": duration_ms or 0}
        return await self._send(
            room_id, sender, "m.room.message", self._with_reply(content, reply_to), ts=ts
        )

    async def _send_location(
        self,
        room_id: str,
        ghost: str,
        latitude: float,
        longitude: float,
        description: str | None = None,
        *,
        ts: int | None = None,
    ) -> str:
        geo = f"geo:{latitude},{longitude}"
        body = description or f"Location: {geo}"
        content = {
            "msgtype": "m.location",
            "body": body,
            "geo_uri": geo,
            "org.matrix.msc3488.location": {"uri": geo, "description": body},
        }
        return await self._send(room_id, ghost, "m.room.message", content, ts=ts)

    async def _send_edit(
        self, room_id: str, ghost: str, event_id: str, new_text: str, *, ts: int | None = None
    ) -> str:
        new_content = {"msgtype": "m.text", "body": new_text}
        content = {
            "msgtype": "m.text",
            "body": f"* {new_text}",
            "m.new_content": new_content,
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        }
        return await self._send(room_id, ghost, "m.room.message", content, ts=ts)

    async def _send_reaction(
        self, room_id: str, ghost: str, event_id: str, key: str, *, ts: int | None = None
    ) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        return await self._send(room_id, ghost, "m.reaction", content, ts=ts)

    async def _redact(
        self,
        room_id: str,
        ghost: str,
        event_id: str,
        reason: str | None = None,
        *,
        ts: int | None = None,
    ) -> str:
        sender = self.ghost_mxid(ghost)
        params = {"ts": int(ts)} if ts is not None else None
        resp = await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}/{self._txn()}",
            user_id=sender,
            params=params,
            json_body={"reason": reason} if reason else {},
        )
        return resp["event_id"]

    async def _send_own_text(self, room_id: str, text: str, *, ts: int | None = None) -> str:
        """A message the user sent from their own phone: sent by the user's own ghost."""
        portal = self.portals.get(room_id)
        own = self.ghost_mxid(portal.receiver) if portal else self.own_ghost()
        await self._ensure_ghost(own)
        await self._ensure_member(room_id, own)
        return await self._send_text(room_id, own, text, ts=ts)

    async def _own_ghost_join(self, room_id: str) -> str:
        portal = self.portals.get(room_id)
        own = self.ghost_mxid(portal.receiver) if portal else self.own_ghost()
        await self._ensure_ghost(own)
        await self._ensure_member(room_id, own)
        return own

    async def _read_by_ghost(self, room_id: str, event_id: str, ghost: str | None = None) -> None:
        """The contact read the message on WhatsApp: an m.read receipt from the ghost."""
        sender = self.ghost_mxid(ghost) if ghost else self.portals[room_id].ghost
        await self._request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}",
            user_id=sender,
            json_body={},
        )

    async def _send_typing(
        self, room_id: str, ghost: str | None = None, typing: bool = True, timeout_ms: int = 5000
    ) -> None:
        sender = self.ghost_mxid(ghost) if ghost else self.portals[room_id].ghost
        await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/typing/{quote(sender)}",
            user_id=sender,
            json_body={"typing": typing, "timeout": timeout_ms},
        )

    async def _notice(
        self,
        room_id: str,
        text: str,
        *,
        html: str | None = None,
        reply_to: str | None = None,
        msgtype: str = "m.notice",
    ) -> str:
        content: dict[str, Any] = {"msgtype": msgtype, "body": text}
        if html:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        return await self._send(
            room_id, self.bot_mxid, "m.room.message", self._with_reply(content, reply_to)
        )

    async def _ping(self) -> dict:
        """Ask Synapse to ping the appservice, which also retries queued transactions now."""
        return await self._request(
            "POST",
            f"/_matrix/client/v1/appservice/{self.appservice_id}/ping",
            json_body={"transaction_id": self._txn()},
        )

    async def _send_bridge_state(
        self, user_id: str, state: str, message: str | None = None, error: str | None = None
    ) -> str:
        """A bridge-state notice in the user's management room (bridgev2 wording)."""
        room = self.management_rooms.get(user_id)
        if room is None:
            raise KeyError(f"{user_id} has no management room")
        phone = self.logins.get(user_id)
        name = f"+{phone}" if phone else f"`{user_id}`"
        text = f"State update for {name}: `{state}`"
        if error:
            text += f" (`{error}`)"
        if message:
            text += f": {message}"
        html = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
        is_error = state in ("BAD_CREDENTIALS", "UNKNOWN_ERROR")
        return await self._notice(
            room, text, html=html, msgtype="m.text" if is_error else "m.notice"
        )

    async def _complete_login(self, phone: str, user_id: str | None = None) -> str | None:
        """The user scanned the QR (or entered the code): finish the login in progress."""
        login = self._find_login(user_id)
        phone = digits_of(phone)
        login.done = True
        if login.task and login.task is not asyncio.current_task():
            login.task.cancel()
        if login.qr_event_id and login.room_id:
            with contextlib.suppress(MatrixRequestError):
                await self._redact(login.room_id, self.bot_mxid, login.qr_event_id)
        self.logins_in_progress.pop(login.user_id, None)
        self.logins[login.user_id] = phone
        self.receivers[login.user_id] = phone
        login.result, login.phone = "complete", phone
        self._finished_logins[login.login_id] = login
        login.notify()
        await self._ensure_ghost(phone)
        if login.room_id is None:
            return None
        return await self._notice(login.room_id, f"Successfully logged in as +{phone}")

    async def _fail_login(
        self,
        reason: str = "Entering code or scanning QR timed out. Please try again.",
        user_id: str | None = None,
    ) -> str | None:
        login = self._find_login(user_id)
        return await self._end_login_failed(login, reason)

    async def _ensure_management_room(self, user_id: str) -> str:
        """Create a management room (bot + user), as if the user had invited the bot."""
        if user_id in self.management_rooms:
            return self.management_rooms[user_id]
        resp = await self._request(
            "POST",
            "/_matrix/client/v3/createRoom",
            user_id=self.bot_mxid,
            json_body={"preset": "private_chat", "is_direct": True, "invite": [user_id]},
        )
        self.management_rooms[user_id] = resp["room_id"]
        return resp["room_id"]

    # ------------------------------------------------------------------ appservice endpoint
    def _token_ok(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else request.query.get("access_token")
        return secrets.compare_digest(token or "", self.hs_token)

    async def _h_transaction(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response(
                {"errcode": "M_FORBIDDEN", "error": "bad hs_token"}, status=403
            )
        if self._down:
            with self._cond:
                self.down_requests += 1
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bridge down"}, status=503)
        txn_id = request.match_info["txn_id"]
        body = await request.json()
        with self._cond:
            self.transactions_seen.append(txn_id)
            events = body.get("events") or []
            ephemeral = body.get("ephemeral") or body.get("de.sorunome.msc2409.ephemeral") or []
            # Synapse on SQLite restarts its txn ids at 1 after a restart, so a repeat is
            # recognised by txn id AND content (event ids / ephemeral payload).
            key = (
                txn_id,
                hashlib.sha256(
                    json.dumps(
                        [[e.get("event_id") for e in events], ephemeral],
                        sort_keys=True,
                        default=str,
                    ).encode()
                ).hexdigest(),
            )
            if key in self._txns_done:
                self.repeated_transactions += 1
                self._cond.notify_all()
                return web.json_response({})
            self._txns_done.add(key)
            self.events_seen.extend(events)
            self.ephemeral_seen.extend(ephemeral)
            self._cond.notify_all()
        assert self._queue is not None
        for evt in events:
            self._queue.put_nowait(evt)
        return web.json_response({})

    async def _h_ping(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        if self._down:
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bridge down"}, status=503)
        return web.json_response({})

    async def _h_user_query(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        user_id = request.match_info["user_id"]
        if self.is_bridge_user(user_id):
            try:
                await self._ensure_registered(user_id)
                return web.json_response({})
            except Exception as e:  # noqa: BLE001
                log.warning("user query for %s failed: %r", user_id, e)
        return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)

    async def _h_not_found(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, status=404
        )

    # ------------------------------------------------------------------ provisioning API
    # A subset of bridgev2's /_matrix/provision/v3 (Bearer <provisioning_secret>, ?user_id=).
    def _p_user(self, request: web.Request) -> str | web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not secrets.compare_digest(token, self.provisioning_secret):
            return web.json_response(
                {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid auth token"}, status=401
            )
        user_id = request.query.get("user_id", "")
        if not user_id.startswith("@"):
            return web.json_response(
                {"errcode": "M_MISSING_PARAM", "error": "user_id query parameter missing"},
                status=400,
            )
        return user_id

    @staticmethod
    def _qr_step(login: LoginProcess) -> dict:
        return {
            "login_id": login.login_id,
            "type": "display_and_wait",
            "step_id": "fi.mau.whatsapp.login.qr",
            "instructions": "Scan the QR code with the WhatsApp mobile app to log in",
            "display_and_wait": {"type": "qr", "data": login.qr_codes[-1]},
        }

    @staticmethod
    def _complete_step(login: LoginProcess) -> dict:
        return {
            "login_id": login.login_id,
            "type": "complete",
            "step_id": "fi.mau.whatsapp.login.complete",
            "instructions": f"Successfully logged in as +{login.phone}",
            "complete": {"user_login_id": login.phone},
        }

    async def _p_login_flows(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        return web.json_response(
            {
                "flows": [
                    {
                        "id": "qr",
                        "name": "QR",
                        "description": "Scan a QR code to pair the bridge to your WhatsApp account",
                    },
                    {
                        "id": "phone",
                        "name": "Pairing code",
                        "description": "Input your phone number to get a pairing code",
                    },
                ]
            }
        )

    async def _p_login_start(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        if request.match_info["flow"] != "qr":
            return web.json_response(
                {"errcode": "M_UNRECOGNIZED", "error": "Only the qr flow is emulated"}, status=400
            )
        login = await self._start_qr_login(None, user)
        return web.json_response(self._qr_step(login))

    async def _p_login_step(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        login = self.logins_in_progress.get(user)
        login_id = request.match_info["login_id"]
        if login is None or login.login_id != login_id:
            # finished logins are still answered once they are done
            login = self._finished_logins.get(login_id)
        if login is None:
            return web.json_response(
                {"errcode": "M_NOT_FOUND", "error": "Login not found"}, status=404
            )
        if not login.done:
            assert login.changed is not None
            seen = len(login.qr_codes)
            waiter = login.changed
            deadline = time.monotonic() + 120
            while not login.done and len(login.qr_codes) == seen and time.monotonic() < deadline:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(waiter.wait(), timeout=1)
                waiter = login.changed or waiter
        if login.result == "complete":
            return web.json_response(self._complete_step(login))
        if login.result == "failed":
            return web.json_response(
                {"errcode": "FI.MAU.WHATSAPP.LOGIN_FAILED", "error": login.failure_reason},
                status=400,
            )
        if login.result == "cancelled":
            return web.json_response(
                {"errcode": "FI.MAU.BRIDGE.LOGIN_CANCELLED", "error": "Login cancelled"}, status=400
            )
        return web.json_response(self._qr_step(login))

    async def _p_logins(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        phone = self.logins.get(user)
        return web.json_response({"login_ids": [phone] if phone else []})

    async def _p_whoami(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        phone = self.logins.get(user)
        logins = (
            [
                {
                    "id": phone,
                    "name": f"+{phone}",
                    "state_event": "CONNECTED",
                    "state": {"state_event": "CONNECTED"},
                }
            ]
            if phone
            else []
        )
        return web.json_response(
            {
                "network": {"displayname": "WhatsApp", "network_id": "whatsapp"},
                "login_flows": [{"id": "qr"}, {"id": "phone"}],
                "homeserver": self.server_name,
                "bridge_bot": self.bot_mxid,
                "command_prefix": "!wa",
                "management_room": self.management_rooms.get(user),
                "logins": logins,
            }
        )

    async def _p_logout(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        login_id = request.match_info["login_id"]
        if self.logins.get(user) != digits_of(login_id) and login_id != "all":
            return web.json_response(
                {"errcode": "M_NOT_FOUND", "error": "Login not found"}, status=404
            )
        self.logins.pop(user, None)
        return web.json_response({})

    async def _p_resolve(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        ident = request.match_info["identifier"]
        phone = digits_of(ident)
        if not phone:
            return web.json_response(
                {"errcode": "M_NOT_FOUND", "error": "Invalid identifier"}, status=404
            )
        mxid = self.ghost_mxid(phone)
        portal = self.portal_for(user, phone)
        body: dict[str, Any] = {"id": phone, "mxid": mxid, "identifiers": [f"tel:+{phone}"]}
        if portal:
            body["dm_room_mxid"] = portal.room_id
        return web.json_response(body)

    async def _p_create_dm(self, request: web.Request) -> web.Response:
        user = self._p_user(request)
        if isinstance(user, web.Response):
            return user
        phone = digits_of(request.match_info["identifier"])
        portal = self.portal_for(user, phone)
        room_id = portal.room_id if portal else await self._create_portal(user, phone)
        return web.json_response(
            {"id": phone, "mxid": self.ghost_mxid(phone), "dm_room_mxid": room_id}
        )

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            evt = await self._queue.get()
            try:
                await self._handle_event(evt)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self._record_error(e)

    # ------------------------------------------------------------------ event handling
    async def _handle_event(self, evt: dict) -> None:
        etype = evt.get("type")
        sender = evt.get("sender", "")
        room_id = evt.get("room_id", "")
        content = evt.get("content") or {}
        if self.is_bridge_user(sender):
            return
        if etype == "m.room.member":
            if evt.get("state_key") == self.bot_mxid and content.get("membership") == "invite":
                await self._on_bot_invited(room_id, sender)
            return
        if room_id in self.portals:
            if etype in ("m.room.message", "m.sticker", "m.reaction", "m.room.redaction"):
                await self._relay(evt, self.portals[room_id])
            return
        if etype != "m.room.message":
            return
        body = (content.get("body") or "").strip()
        if self.management_rooms.get(sender) == room_id:
            await self._on_command(room_id, sender, body, evt)
        elif body.lower().startswith("!wa "):
            await self._on_command(room_id, sender, body[4:].strip(), evt)

    async def _on_bot_invited(self, room_id: str, inviter: str) -> None:
        await self._join(room_id, self.bot_mxid)
        members = await self._request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members",
            user_id=self.bot_mxid,
        )
        joined = set((members.get("joined") or {}).keys())
        # A room with only the user and the bot becomes the user's management room.
        if joined <= {self.bot_mxid, inviter}:
            self.management_rooms[inviter] = room_id
            await self._notice(
                room_id,
                "Hello, I'm a WhatsApp bridge bot.\nUse `help` for help or `login` to log in.",
                html="Hello, I'm a WhatsApp bridge bot.<br>Use <code>help</code> for help or "
                "<code>login</code> to log in.",
            )
        else:
            await self._notice(
                room_id, "Hello, I'm a WhatsApp bridge bot. Use `!wa help` for help."
            )

    async def _on_command(self, room_id: str, sender: str, body: str, evt: dict) -> None:
        login = self.logins_in_progress.get(sender)
        if login and login.waiting_for_phone and not body.lower().startswith(("cancel", "!wa")):
            await self._on_phone_entered(login, body)
            return
        words = body.split()
        if not words:
            return
        cmd, args = words[0].lower(), [w.lower() for w in words[1:]]
        if cmd == "help":
            await self._notice(
                room_id,
                "\n".join(
                    [
                        "**Authentication**",
                        "login [flow] - Log into WhatsApp (flows: qr, phone)",
                        "logout <login ID> - Log out of WhatsApp",
                        "list-logins - List your logins",
                        "cancel - Cancel an ongoing action",
                    ]
                ),
            )
        elif cmd == "login":
            if sender in self.logins and sender not in self.logins_in_progress:
                pass  # real bridge allows several logins; keep it simple: start a new one
            if not args:
                await self._notice(
                    room_id,
                    "Please specify a login flow, e.g. `login qr`.\n\n"
                    "* `qr` - Scan a QR code to pair the bridge to your WhatsApp account.\n"
                    "* `phone` - Input your phone number to get a pairing code.",
                )
            elif args[0] == "qr":
                await self._start_qr_login(room_id, sender)
            elif args[0] == "phone":
                await self._cancel_login(sender, quiet=True)
                proc = LoginProcess(sender, room_id, "phone", waiting_for_phone=True)
                self.logins_in_progress[sender] = proc
                await self._notice(
                    room_id, "Please enter your phone number in international format"
                )
            else:
                await self._notice(
                    room_id,
                    f"Invalid login flow `{args[0]}`. Available options:\n\n* `qr`\n* `phone`",
                )
        elif cmd == "cancel":
            if sender in self.logins_in_progress:
                await self._cancel_login(sender)
                await self._notice(room_id, "Login cancelled.")
            else:
                await self._notice(room_id, "No ongoing command.")
        elif cmd == "logout":
            phone = self.logins.get(sender)
            if not phone:
                await self._notice(room_id, "You're not logged in")
            elif args and digits_of(args[0]) != phone:
                await self._notice(room_id, "Login not found")
            else:
                self.logins.pop(sender, None)
                await self._notice(room_id, "Logged out")
        elif cmd == "list-logins":
            phone = self.logins.get(sender)
            if phone:
                await self._notice(room_id, f"* `{phone}` (+{phone}) - `CONNECTED`")
            else:
                await self._notice(room_id, "You're not logged in")
        else:
            await self._notice(room_id, "Unknown command, use the `help` command for help.")

    def _find_login(self, user_id: str | None) -> LoginProcess:
        if user_id is not None:
            login = self.logins_in_progress.get(user_id)
        elif len(self.logins_in_progress) == 1:
            login = next(iter(self.logins_in_progress.values()))
        else:
            login = None
        if login is None:
            raise LookupError(
                f"no login in progress for {user_id or 'any user'}: {list(self.logins_in_progress)}"
            )
        return login

    async def _cancel_login(self, user_id: str, quiet: bool = False) -> None:
        login = self.logins_in_progress.pop(user_id, None)
        if not login:
            return
        login.done = True
        login.result = "cancelled"
        self._finished_logins[login.login_id] = login
        login.notify()
        if login.task and login.task is not asyncio.current_task():
            login.task.cancel()
        if login.qr_event_id and login.room_id:
            with contextlib.suppress(MatrixRequestError):
                await self._redact(login.room_id, self.bot_mxid, login.qr_event_id)

    @staticmethod
    def _new_qr_string() -> str:
        parts = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (48, 32, 32, 32)]
        return "2@" + ",".join(parts)

    async def _upload_qr(self, qr: str) -> dict:
        png = qr_png(qr)
        mxc = await self._upload(self.bot_mxid, png, "image/png", "qr.png")
        return {
            "msgtype": "m.image",
            "body": qr,
            "url": mxc,
            "info": {"mimetype": "image/png", "size": len(png), "w": 512, "h": 512},
        }

    async def _start_qr_login(self, room_id: str | None, user_id: str) -> LoginProcess:
        await self._cancel_login(user_id, quiet=True)
        login = LoginProcess(user_id, room_id, "qr")
        login.notify()
        self.logins_in_progress[user_id] = login
        qr = self._new_qr_string()
        login.qr_codes.append(qr)
        if room_id is not None:
            await self._notice(room_id, "Scan the QR code with the WhatsApp mobile app to log in")
            login.qr_event_id = await self._send(
                room_id, self.bot_mxid, "m.room.message", await self._upload_qr(qr)
            )
        login.task = self._spawn(self._qr_refresher(login))
        return login

    async def _qr_refresher(self, login: LoginProcess) -> None:
        for i in range(self.qr_refreshes):
            await asyncio.sleep(
                self.qr_first_refresh_seconds if i == 0 else self.qr_refresh_seconds
            )
            if login.done:
                return
            qr = self._new_qr_string()
            login.qr_codes.append(qr)
            content = await self._upload_qr(qr)
            if login.done:
                return
            login.notify()
            if not login.room_id or not login.qr_event_id:
                continue
            edit = dict(content)
            edit["m.new_content"] = dict(content)
            edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": login.qr_event_id}
            await self._send(login.room_id, self.bot_mxid, "m.room.message", edit)
        await asyncio.sleep(
            self.qr_refresh_seconds if self.qr_refreshes else self.qr_first_refresh_seconds
        )
        if not login.done:
            await self._end_login_failed(
                login, "Entering code or scanning QR timed out. Please try again."
            )

    async def _end_login_failed(self, login: LoginProcess, reason: str) -> str | None:
        login.done = True
        login.result, login.failure_reason = "failed", reason
        self._finished_logins[login.login_id] = login
        login.notify()
        if login.task and login.task is not asyncio.current_task():
            login.task.cancel()
        self.logins_in_progress.pop(login.user_id, None)
        if login.room_id is None:
            return None
        if login.qr_event_id:
            with contextlib.suppress(MatrixRequestError):
                await self._redact(login.room_id, self.bot_mxid, login.qr_event_id)
        return await self._notice(login.room_id, f"Login failed: {reason}")

    async def _on_phone_entered(self, login: LoginProcess, body: str) -> None:
        phone = digits_of(body)
        if not body.strip().startswith("+") or len(phone) < 7:
            await self._notice(
                login.room_id,
                "Please enter your phone number in international format, starting with +",
            )
            return
        login.waiting_for_phone = False
        alphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
        code = "".join(secrets.choice(alphabet) for _ in range(8))
        login.pairing_code = f"{code[:4]}-{code[4:]}"
        await self._notice(
            login.room_id,
            f"Input the pairing code in the WhatsApp mobile app to log in\n\n{login.pairing_code}",
            html="Input the pairing code in the WhatsApp mobile app to log in<br><br>"
            f"<code>{login.pairing_code}</code>",
        )

    # ------------------------------------------------------------------ relaying
    async def _send_status(
        self,
        room_id: str,
        event_id: str,
        status: str,
        reason: str | None = None,
        message: str | None = None,
    ) -> str:
        content: dict[str, Any] = {
            "network": "whatsapp",
            "m.relates_to": {"rel_type": "m.reference", "event_id": event_id},
            "status": status,
        }
        if status != "SUCCESS":
            content["reason"] = reason or "m.foreign_network_error"
            if message:
                content["error"] = message
                content["message"] = message
        return await self._send(room_id, self.bot_mxid, "com.beeper.message_send_status", content)

    async def _relay(self, evt: dict, portal: Portal) -> None:
        event_id = evt["event_id"]
        if event_id in self._relayed:
            return
        self._relayed.add(event_id)
        content = evt.get("content") or {}
        etype = evt["type"]
        if etype == "m.room.message" and content.get("msgtype") == "m.notice":
            # bridge_notices: false -> not bridged, status without a notice
            await self._send_status(
                portal.room_id,
                event_id,
                "FAIL_RETRIABLE",
                "m.foreign_network_error",
                "ignoring m.notice message",
            )
            return
        record = {
            "room_id": portal.room_id,
            "event_id": event_id,
            "content": content,
            "sender": evt.get("sender"),
            "type": etype,
            "chat_jid": portal.chat_jid,
            "origin_server_ts": evt.get("origin_server_ts"),
            "redacts": evt.get("redacts") or content.get("redacts"),
        }
        if self._fail_next:
            kind, reason = self._fail_next.pop(0)
            record["status"] = kind
            record["reason"] = reason
            with self._cond:
                self.failed.append(record)
                self._cond.notify_all()
            await self._send_status(
                portal.room_id, event_id, kind, "m.foreign_network_error", reason
            )
            if kind == "FAIL_PERMANENT":
                await self._notice(
                    portal.room_id,
                    f"\u26a0\ufe0f Your message was not bridged: {reason}",
                    reply_to=event_id,
                )
            return
        with self._cond:
            self.delivered.append(record)
            self._cond.notify_all()
        await self._send_status(portal.room_id, event_id, "SUCCESS")
        await self._request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(portal.room_id)}/receipt/m.read/{quote(event_id)}",
            user_id=self.bot_mxid,
            json_body={},
        )

    # ------------------------------------------------------------------ plain sync controls
    def fail_next_send(self, kind: str = "FAIL_RETRIABLE", reason: str = "network error") -> None:
        """Make the next relayed CRM event fail with that status (queue; call n times for n)."""
        if kind not in ("FAIL_RETRIABLE", "FAIL_PERMANENT"):
            raise ValueError(kind)
        self._fail_next.append((kind, reason))

    def set_down(self, down: bool = True) -> None:
        """While down, the appservice endpoint answers 503 (Synapse queues and retries)."""
        self._down = down

    @property
    def is_down(self) -> bool:
        return self._down

    def portal_for(self, crm_user_id: str | None = None, ghost: str | None = None) -> Portal | None:
        gm = self.ghost_mxid(ghost) if ghost else None
        for p in self.portals.values():
            if (crm_user_id is None or p.crm_user_id == crm_user_id) and (
                gm is None or gm in p.ghosts
            ):
                return p
        return None

    def delivered_in(self, room_id: str) -> list[dict]:
        with self._cond:
            return [d for d in self.delivered if d["room_id"] == room_id]

    # ------------------------------------------------------------------ sync/async wrappers
    ensure_ghost, aensure_ghost = _dual(_ensure_ghost)
    set_ghost_avatar, aset_ghost_avatar = _dual(_set_ghost_avatar)
    upload, aupload = _dual(_upload)
    create_portal, acreate_portal = _dual(_create_portal)
    send_event, asend_event = _dual(_send)
    send_state, asend_state = _dual(_send_state)
    send_text, asend_text = _dual(_send_text)
    send_media, asend_media = _dual(_send_media)
    send_location, asend_location = _dual(_send_location)
    send_edit, asend_edit = _dual(_send_edit)
    send_reaction, asend_reaction = _dual(_send_reaction)
    redact, aredact = _dual(_redact)
    send_own_text, asend_own_text = _dual(_send_own_text)
    own_ghost_join, aown_ghost_join = _dual(_own_ghost_join)
    read_by_ghost, aread_by_ghost = _dual(_read_by_ghost)
    send_typing, asend_typing = _dual(_send_typing)
    notice, anotice = _dual(_notice)
    ping, aping = _dual(_ping)
    send_bridge_state, asend_bridge_state = _dual(_send_bridge_state)
    complete_login, acomplete_login = _dual(_complete_login)
    fail_login, afail_login = _dual(_fail_login)
    ensure_management_room, aensure_management_room = _dual(_ensure_management_room)
    invite, ainvite = _dual(_invite)
    join, ajoin = _dual(_join)
    ensure_member, aensure_member = _dual(_ensure_member)

    # convenience media senders
    def send_image(
        self,
        room_id: str,
        ghost: str,
        data: bytes | None = None,
        *,
        mimetype: str = "image/png",
        filename: str = "image.png",
        width: int = 64,
        height: int = 48,
        **kw: Any,
    ) -> str:
        return self.send_media(
            room_id,
            ghost,
            "image",
            data or solid_png(width, height),
            mimetype,
            filename,
            width=width,
            height=height,
            **kw,
        )

    def send_video(
        self,
        room_id: str,
        ghost: str,
        data: bytes = b"\x00\x00\x00\x18ftypmp42fake",
        *,
        mimetype: str = "video/mp4",
        filename: str = "video.mp4",
        width: int = 640,
        height: int = 360,
        duration_ms: int = 3000,
        **kw: Any,
    ) -> str:
        return self.send_media(
            room_id,
            ghost,
            "video",
            data,
            mimetype,
            filename,
            width=width,
            height=height,
            duration_ms=duration_ms,
            **kw,
        )

    def send_audio(
        self,
        room_id: str,
        ghost: str,
        data: bytes = b"OggS\x00fake-audio",
        *,
        mimetype: str = "audio/ogg",
        filename: str = "audio.ogg",
        duration_ms: int = 2000,
        **kw: Any,
    ) -> str:
        return self.send_media(
            room_id, ghost, "audio", data, mimetype, filename, duration_ms=duration_ms, **kw
        )

    def send_voice(
        self,
        room_id: str,
        ghost: str,
        data: bytes = b"OggS\x00fake-voice",
        *,
        mimetype: str = "audio/ogg; codecs=opus",
        filename: str = "voice.ogg",
        duration_ms: int = 4000,
        **kw: Any,
    ) -> str:
        return self.send_media(
            room_id, ghost, "voice", data, mimetype, filename, duration_ms=duration_ms, **kw
        )

    def send_file(
        self,
        room_id: str,
        ghost: str,
        data: bytes = b"%PDF-1.4\n% fake\n",
        *,
        mimetype: str = "application/pdf",
        filename: str = "document.pdf",
        **kw: Any,
    ) -> str:
        return self.send_media(room_id, ghost, "file", data, mimetype, filename, **kw)

    def send_sticker(
        self,
        room_id: str,
        ghost: str,
        data: bytes | None = None,
        *,
        mimetype: str = "image/png",
        filename: str = "sticker.png",
        width: int = 128,
        height: int = 128,
        **kw: Any,
    ) -> str:
        return self.send_media(
            room_id,
            ghost,
            "sticker",
            data or solid_png(width, height, 200),
            mimetype,
            filename,
            width=width,
            height=height,
            **kw,
        )


__all__ = [
    "BridgeEmulator",
    "MatrixRequestError",
    "Portal",
    "LoginProcess",
    "qr_png",
    "solid_png",
    "digits_of",
    "DEFAULT_OWN_PHONE",
]
