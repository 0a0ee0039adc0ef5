"""Real mail servers inside this process, for tests, the benchmark and trying Switchboard out.

- `ImapServer`: pymap's dict backend, a real IMAP4rev1 server kept in memory, listening on a
  free localhost port, one user (`demouser` / `demopass` unless told otherwise). Mail is put
  in with a real IMAP APPEND (`append`), exactly as a mail client would.
- `SmtpServer`: aiosmtpd on a free port that keeps every mail it accepts (`messages`), and can
  be told to answer the next DATA commands with a failure code (`fail_next`).

pymap and aiosmtpd are development requirements (requirements-dev.txt); production never
imports this module.
"""

import asyncio
import imaplib
import socket
import threading
from argparse import Namespace
from contextlib import AsyncExitStack
from email import message_from_bytes, policy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ImapServer:
    def __init__(self, *, user: str = "demouser", password: str = "demopass", port: int = 0):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.user = user
        self.password = password
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "ImapServer":
        self._thread = threading.Thread(target=self._run, name="pymap", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from pymap.backend.dict import DictBackend
        from pymap.imap import IMAPService

        args = Namespace(
            host="127.0.0.1",
            port=str(self.port),
            debug=False,
            cert=None,
            key=None,
            tls=False,
            passlib_cfg=None,
            proxy_protocol=None,
            inherited_sockets=None,
            demo_data=False,
            demo_user=self.user,
            demo_password=self.password,
        )
        backend, config = await DictBackend.init(
            args, secure_auth=False, reject_dnsbl=False, invalid_user_sleep=0.0
        )
        config.apply_context()
        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            await IMAPService(backend, config).start(stack)
            self._ready.set()
            await self._stop.wait()

    # -- a client's view, for filling mailboxes ------------------------------------------------
    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes | list[bytes], folder: str = "INBOX") -> None:
        """APPEND one or many messages, as a mail client files them."""
        conn = self.client()
        try:
            self.create_folder(folder, conn)
            for item in raw if isinstance(raw, list) else [raw]:
                typ, data = conn.append(folder, None, None, item)
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data}")
        finally:
            conn.logout()

    @staticmethod
    def create_folder(folder: str, conn: imaplib.IMAP4) -> None:
        if folder.upper() != "INBOX":
            conn.create(folder)  # NO when it exists: fine

    def recreate_folder(self, folder: str) -> None:
        """Delete and create a folder again: the server gives it a new UIDVALIDITY."""
        conn = self.client()
        try:
            conn.delete(folder)
            conn.create(folder)
        finally:
            conn.logout()


class SmtpServer:
    """aiosmtpd on a free port. `fail_next(451, 451)` answers the next two DATA commands so."""

    def __init__(self, *, user: str | None = None, password: str | None = None):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list = []  # email.message.EmailMessage, with .envelope_rcpt
        self.raw: list[bytes] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self.user = user
        self.password = password
        self._controller = None

    def fail_next(self, *codes: int) -> None:
        with self._lock:
            self._failures.extend(codes)

    def start(self) -> "SmtpServer":
        from aiosmtpd.controller import Controller

        kwargs = {}
        if self.user:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, data_size_limit=None, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


_REASONS = {
    421: "421 4.3.2 Service shutting down, try again later",
    450: "450 4.2.1 Mailbox busy, try again later",
    451: "451 4.3.0 Temporary local problem, try again later",
    550: "550 5.1.1 <customer@example.com>: Recipient address rejected: User unknown",
    552: "552 5.3.4 Message size exceeds fixed limit",
}


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        code = self.server._take_failure()
        if code is not None:
            return _REASONS.get(code, f"{code} failure requested by the test")
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        parsed.envelope_rcpt = list(envelope.rcpt_tos)
        parsed.envelope_from = envelope.mail_from
        with self.server._lock:
            self.server.raw.append(raw)
            self.server.messages.append(parsed)
        return "250 2.0.0 Ok: queued"
