"""A throwaway, real Synapse homeserver for tests.

Synapse lives in its own virtualenv (default ``~/.cache/switchboard/synapse-venv``,
overridable with ``$SWITCHBOARD_CACHE_DIR`` or ``$SWITCHBOARD_SYNAPSE_VENV``), created and
filled from PyPI the first time it is needed. Each ``SynapseServer`` gets a fresh temp dir
(config, sqlite database, media store, logs) and one loopback listener on a free port.

Usage::

    with SynapseServer(server_name="switchboard.test",
                       app_service_config_files=[emulator.registration_path]) as hs:
        hs.register_user("alice", "secret")
        ...
        hs.stop()    # data dir and port are kept
        hs.start()   # same port, same database
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
import yaml

SYNAPSE_PIP_SPEC = os.environ.get("SWITCHBOARD_SYNAPSE_SPEC", "matrix-synapse")
_HIGH_RATE = {"per_second": 100000, "burst_count": 100000}


def cache_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_CACHE_DIR") or Path.home() / ".cache" / "switchboard")


def synapse_venv_dir() -> Path:
    env = os.environ.get("SWITCHBOARD_SYNAPSE_VENV")
    return Path(env) if env else cache_dir() / "synapse-venv"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _synapse_importable(python: Path) -> bool:
    if not python.exists():
        return False
    r = subprocess.run(
        [str(python), "-c", "import synapse, twisted"],
        capture_output=True,
        timeout=120,
    )
    return r.returncode == 0


def ensure_synapse_installed(venv: Path | None = None, timeout: float = 900) -> Path:
    """Return the python of a virtualenv that has matrix-synapse; create it if missing.

    Safe against concurrent callers (pytest-xdist workers) through a lock file.
    """
    venv = Path(venv) if venv else synapse_venv_dir()
    python = venv / "bin" / "python"
    if _synapse_importable(python):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _synapse_importable(python):
                return python
            if not python.exists():
                base = shutil.which("python3") or sys.executable
                subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                check=False,
                timeout=timeout,
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", SYNAPSE_PIP_SPEC],
                check=True,
                timeout=timeout,
            )
            if not _synapse_importable(python):
                raise RuntimeError(f"matrix-synapse not importable in {venv} after install")
            return python
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SynapseError(RuntimeError):
    pass


_RUNNING: set[subprocess.Popen] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: never leave a Synapse behind when the interpreter exits."""
    for proc in list(_RUNNING):
        with contextlib.suppress(Exception):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


class SynapseServer:
    """A real Synapse on 127.0.0.1:<free port>, data in a temp dir.

    Parameters:
        server_name: the homeserver's domain (user ids are ``@u:<server_name>``).
        app_service_config_files: appservice registration YAML paths.
        port: listener port (default: a free one, kept across stop()/start()).
        extra_config: dict merged (shallowly) over the generated config last.
        startup_timeout: seconds to wait for ``/health``.
    """

    def __init__(
        self,
        server_name: str = "switchboard.test",
        app_service_config_files: Iterable[str | os.PathLike] = (),
        *,
        port: int | None = None,
        extra_config: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        venv: str | os.PathLike | None = None,
        data_dir: str | os.PathLike | None = None,
    ) -> None:
        self.server_name = server_name
        self.app_service_config_files = [str(Path(p).resolve()) for p in app_service_config_files]
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.base_url = f"http://{self.host}:{self.port}"
        self.extra_config = extra_config or {}
        self.startup_timeout = startup_timeout
        self._venv = Path(venv) if venv else None
        self._own_data_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="switchboard-synapse-"))
        )
        self.config_path = self.data_dir / "hs.yaml"
        self.log_path = self.data_dir / "homeserver.log"
        self.stdout_path = self.data_dir / "stdout.log"
        self.registration_shared_secret = hashlib.sha256(os.urandom(32)).hexdigest()
        self.process: subprocess.Popen | None = None
        self.python: Path | None = None
        self._configured = False
        self._stdout_file = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SynapseServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _generate_config(self) -> None:
        assert self.python is not None
        subprocess.run(
            [
                str(self.python),
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                self.server_name,
                "--config-path",
                str(self.config_path),
                "--data-directory",
                str(self.data_dir),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=self.data_dir,
            check=True,
            capture_output=True,
            timeout=120,
        )
        cfg = yaml.safe_load(self.config_path.read_text())
        cfg.update(
            {
                "listeners": [
                    {
                        "port": self.port,
                        "bind_addresses": [self.host],
                        "type": "http",
                        "tls": False,
                        "x_forwarded": False,
                        "resources": [{"names": ["client"], "compress": False}],
                    }
                ],
                "database": {
                    "name": "sqlite3",
                    "args": {"database": str(self.data_dir / "homeserver.db")},
                },
                "media_store_path": str(self.data_dir / "media_store"),
                "public_baseurl": self.base_url + "/",
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "presence": {"enabled": False},
                "enable_registration": False,
                "registration_shared_secret": self.registration_shared_secret,
                "app_service_config_files": list(self.app_service_config_files),
                "report_stats": False,
                "url_preview_enabled": False,
                "enable_metrics": False,
                "max_upload_size": "100M",
                "federation_domain_whitelist": [],
                "log_config": str(self.data_dir / "log.config"),
                # rate limiters: effectively off
                "rc_message": _HIGH_RATE,
                "rc_registration": _HIGH_RATE,
                "rc_registration_token_validity": _HIGH_RATE,
                "rc_login": {
                    "address": _HIGH_RATE,
                    "account": _HIGH_RATE,
                    "failed_attempts": _HIGH_RATE,
                },
                "rc_admin_redaction": _HIGH_RATE,
                "rc_joins": {"local": _HIGH_RATE, "remote": _HIGH_RATE},
                "rc_joins_per_room": _HIGH_RATE,
                "rc_key_requests": _HIGH_RATE,
                "rc_3pid_validation": _HIGH_RATE,
                "rc_invites": {
                    "per_room": _HIGH_RATE,
                    "per_user": _HIGH_RATE,
                    "per_issuer": _HIGH_RATE,
                },
                "rc_third_party_invite": _HIGH_RATE,
                "rc_media_create": _HIGH_RATE,
                "rc_presence": {"per_user": _HIGH_RATE},
                "rc_delayed_event_mgmt": _HIGH_RATE,
                "rc_room_creation": _HIGH_RATE,
                "rc_reports": _HIGH_RATE,
                "rc_user_directory": _HIGH_RATE,
                "rc_profile": _HIGH_RATE,
            }
        )
        cfg.pop("pid_file", None)
        cfg.update(self.extra_config)
        (self.data_dir / "log.config").write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "formatters": {
                        "precise": {
                            "format": "%(asctime)s - %(name)s - %(lineno)d - "
                            "%(levelname)s - %(request)s - %(message)s"
                        }
                    },
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "formatter": "precise",
                            "filename": str(self.log_path),
                            "encoding": "utf8",
                        }
                    },
                    "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
                    "root": {"level": "INFO", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self._configured = True

    def start(self) -> None:
        """Start (or restart, on the same port and data dir) and wait for /health."""
        if self._closed:
            raise SynapseError("SynapseServer is closed")
        if self.process is not None and self.process.poll() is None:
            return
        if self.python is None:
            self.python = ensure_synapse_installed(self._venv)
        if not self._configured:
            self._generate_config()
        self._stdout_file = open(self.stdout_path, "ab")
        self.process = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.data_dir,
            stdout=self._stdout_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _RUNNING.add(self.process)
        try:
            self._wait_healthy(self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        session = requests.Session()
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise SynapseError(
                        f"Synapse exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    r = session.get(self.base_url + "/health", timeout=2)
                    if r.status_code == 200 and r.text.strip() == "OK":
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.05)
        finally:
            session.close()
        raise SynapseError(f"Synapse not healthy after {timeout}s:\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process; keep port, config and data for a later start()."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc is not None:
            _RUNNING.discard(proc)
        if self._stdout_file is not None:
            self._stdout_file.close()
            self._stdout_file = None
        # wait until the port is really free again so start() can rebind it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.host, self.port))
                    break
                except OSError:
                    time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the data dir (if we created it)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            if self._own_data_dir and not os.environ.get("SWITCHBOARD_KEEP_SYNAPSE_DATA"):
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        out = []
        for p in (self.stdout_path, self.log_path):
            with contextlib.suppress(OSError):
                out.append(
                    f"--- {p.name}\n"
                    + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)

    # ------------------------------------------------------------------ helpers
    def mxid(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def register_user(
        self, username: str, password: str, admin: bool = False, displayname: str | None = None
    ) -> dict[str, Any]:
        """Register via the shared-secret admin API.

        Returns {user_id, access_token, device_id, home_server}."""
        url = self.base_url + "/_synapse/admin/v1/register"
        r = requests.get(url, timeout=10)
        r.raise_for_status()
        nonce = r.json()["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            nonce.encode()
            + b"\x00"
            + username.encode()
            + b"\x00"
            + password.encode()
            + b"\x00"
            + (b"admin" if admin else b"notadmin")
        )
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname:
            body["displayname"] = displayname
        r = requests.post(url, json=body, timeout=30)
        if r.status_code != 200:
            raise SynapseError(f"register_user({username}) failed: {r.status_code} {r.text}")
        return r.json()

    def login(self, username: str, password: str) -> dict[str, Any]:
        r = requests.post(
            self.base_url + "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username},
                "password": password,
            },
            timeout=30,
        )
        if r.status_code != 200:
            raise SynapseError(f"login({username}) failed: {r.status_code} {r.text}")
        return r.json()
