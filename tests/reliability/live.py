"""Real servers for the reliability tests: compose's web command (uvicorn) on the test's PostgreSQL
database (psycopg pool), optionally Debian's nginx in front with nginx/switchboard.conf, and a
redis-server of our own on a free port (never the shared one) that a test may kill.

Data is created by the test process with `transactional_db` (committed, so the servers see it)."""

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.compose_commands import compose_command

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONFIG = ROOT / "nginx" / "switchboard.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {port} after {seconds} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def require_postgres_and_redis() -> None:
    if connection.vendor != "postgresql" or not os.environ.get("DATABASE_URL"):
        pytest.skip("needs the PostgreSQL test database (DATABASE_URL)")
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs the Redis the servers share with the test (REDIS_URL)")


def database_url_for_servers() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def server_env(**overrides: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_servers(),
        "DJANGO_DEBUG": "true",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return env


@contextmanager
def web_servers(count: int, env: dict, logs: Path):
    """`count` processes of docker-compose.yml's web command (uvicorn, --no-proxy-headers);
    yields their ports."""
    ports, processes = [], []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for index in range(count):
            port = free_port()
            handle = open(logs / f"web{index + 1}.log", "w")  # noqa: SIM115 - closed by the OS
            processes.append(
                subprocess.Popen(
                    compose_command(f"web{index % 2 + 1}", port),
                    cwd=ROOT,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            )
            ports.append(port)
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process)
        yield ports
    finally:
        for process in processes:
            stop(process)


@contextmanager
def nginx_in_front(web_ports: list[int], base: Path):
    """nginx/switchboard.conf rendered for loopback in front of two web ports."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        pytest.skip("nginx is not installed")
    prefix = base / "nginx"
    for folder in (prefix / "logs", prefix / "tmp", base / "static", base / "media"):
        folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = NGINX_CONFIG.read_text()
    for old, new in (
        ("web1:8000", f"127.0.0.1:{web_ports[0]}"),
        ("web2:8000", f"127.0.0.1:{web_ports[1]}"),
        ("ws:8000", f"127.0.0.1:{web_ports[0]}"),  # uvicorn serves websockets there too
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("/srv/static/", f"{base / 'static'}/"),
        ("/srv/media/", f"{base / 'media'}/"),
    ):
        assert old in site, f"{old} not in {NGINX_CONFIG}"
        site = site.replace(old, new)
    (prefix / "switchboard.conf").write_text(site)
    user = "user root;" if os.geteuid() == 0 else ""
    tmp = prefix / "tmp"
    (prefix / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {prefix}/switchboard.conf;
}}
"""
    )
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)


class OwnRedis:
    """A redis-server on a free port that the test may kill; never the shared one."""

    def __init__(self, base: Path):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(base)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
