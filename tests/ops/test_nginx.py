"""nginx/switchboard.conf with Debian's real nginx in front of two real daphne processes, and
compose's `ws` service (uvicorn) for the websockets.

The config is rendered for loopback (upstreams web1/web2 → two local daphne ports, ws → the `ws`
command of docker-compose.yml on a third, /srv paths →
temporary directories), checked with `nginx -t`, then started; requests go through it.
The app runs on SQLite with MEDIA_X_ACCEL=1, as in compose.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from communications.consumers import CLOSE_UNAUTHENTICATED
from tests.compose_commands import compose_command

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "nginx" / "switchboard.conf"
PYTHON = sys.executable
MEDIA_BYTES = bytes(i % 251 for i in range(1000))

SETUP_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from communications.media import attachment_url, avatar_url
from communications.models import Attachment, Channel, Conversation, Message
from crm.models import Contact, Team

user = get_user_model().objects.create_user("nginx-manager", password="x")
team = Team.objects.create(name="nginx team")
team.members.add(user)
channel = Channel.objects.create(kind="api", name="nginx channel")
channel.teams.add(team)
contact = Contact.objects.create(name="Range Tester")
conversation = Conversation.objects.create(channel=channel, contact=contact, external_id="c1")
message = Message.objects.create(
    conversation=conversation, channel=channel, direction="in", kind="video", status="received",
    created_at=conversation.created_at,
)
item = Attachment(message=message, filename="clip.mp4", mime_type="video/mp4", size=1000)
item.file.save("clip.mp4", ContentFile(bytes(i % 251 for i in range(1000))), save=True)
page = Attachment(message=message, filename="invoice.html", mime_type="text/html", size=30)
page.file.save("invoice.html", ContentFile(b"<script>alert(document.cookie)</script>"), save=True)
contact.avatar.save("probe.png", ContentFile(b"avatar-probe"), save=True)
client = Client()
client.force_login(user)
print(json.dumps({"cookie": client.cookies["sessionid"].value, "url": attachment_url(item),
                  "file": item.file.name, "html_url": attachment_url(page),
                  "avatar_url": avatar_url(contact.pk, contact.avatar)}))
"""


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


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    found = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if not found:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("nginx is not installed and we are not root to apt-get install it")
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "nginx-light"],
            check=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found


@pytest.fixture(scope="module")
def stack(nginx_binary, tmp_path_factory):
    """Two daphnes and nginx in front; yields what the tests need to talk to them."""
    base = tmp_path_factory.mktemp("nginx-stack")
    media, static, prefix = base / "media", base / "static", base / "nginx"
    for folder in (media, static, prefix / "logs", prefix / "tmp"):
        folder.mkdir(parents=True)
    (static / "probe.css").write_text("body { color: teal; }\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{base / 'app.sqlite3'}",
        MEDIA_ROOT=str(media),
        MEDIA_X_ACCEL="1",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="crm.settings",
        LOG_LEVEL="WARNING",
    )
    run = dict(cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    migrated = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], **run)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    setup = subprocess.run([PYTHON, "manage.py", "shell", "-c", SETUP_SCRIPT], **run)
    assert setup.returncode == 0, setup.stderr[-2000:]
    app = json.loads(setup.stdout.strip().splitlines()[-1])

    processes = []
    web_ports = [free_port(), free_port()]
    logs = []
    try:

        def start_daphne(index: int) -> subprocess.Popen:
            handle = open(logs[index], "a")  # noqa: SIM115 - closed with the process below
            return subprocess.Popen(
                [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_ports[index])]
                + ["-v", "1", "crm.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

        for index in range(len(web_ports)):
            logs.append(base / f"daphne{index + 1}.log")
            processes.append(start_daphne(index))
        ws_port = free_port()
        processes.append(
            subprocess.Popen(
                compose_command("ws", ws_port),
                cwd=ROOT,
                env=env,
                stdout=open(base / "ws.log", "w"),  # noqa: SIM115 - closed with the process
                stderr=subprocess.STDOUT,
            )
        )
        for port, process in zip([*web_ports, ws_port], processes, strict=True):
            wait_for_port(port, process)

        nginx_port = free_port()
        site = CONFIG.read_text()
        for old, new in (
            ("web1:8000", f"127.0.0.1:{web_ports[0]}"),
            ("web2:8000", f"127.0.0.1:{web_ports[1]}"),
            ("ws:8000", f"127.0.0.1:{ws_port}"),
            ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
            ("/srv/static/", f"{static}/"),
            ("/srv/media/", f"{media}/"),
        ):
            assert old in site, f"{old} not in {CONFIG}"
            site = site.replace(old, new)
        (prefix / "switchboard.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""
        tmp = prefix / "tmp"
        (prefix / "nginx.conf").write_text(
            f"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
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
        nginx_cmd = [nginx_binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        checked = subprocess.run([*nginx_cmd, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        nginx = subprocess.Popen(
            [*nginx_cmd, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(prefix / "logs" / "stderr.log", "w"),  # noqa: SIM115
        )
        processes.append(nginx)
        wait_for_port(nginx_port, nginx)
        yield {
            "port": nginx_port,
            "cookie": app["cookie"],
            "media_url": app["url"],
            "media_file": app["file"],
            "html_url": app["html_url"],
            "avatar_url": app["avatar_url"],
            "daphne_logs": logs,
            "web_ports": web_ports,
            "processes": processes,  # web1, web2, ws, nginx
            "start_daphne": start_daphne,
            "nginx_check": checked.stderr,
        }
    finally:
        for process in reversed(processes):
            stop(process)


def request(stack, method: str, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", stack["port"], timeout=15)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_nginx_accepts_the_rendered_config(stack):
    assert "syntax is ok" in stack["nginx_check"]
    assert "test is successful" in stack["nginx_check"]


def test_health_is_proxied_to_both_daphnes(stack):
    for _ in range(4):
        status, headers, body = request(stack, "GET", "/health/")
        assert status == 200, body[:500]
        payload = json.loads(body)
        assert payload["status"] == "ok"
        assert payload["checks"]["database"]["vendor"] == "sqlite"
    time.sleep(0.5)  # daphne writes its access log line after the response
    for log in stack["daphne_logs"]:
        assert "/health/" in log.read_text(), f"{log.name} got no request: not balanced"


def test_webhooks_go_to_web1_only_while_it_is_up(stack):
    """One process takes every delivery, so the fast door's group commit is one INSERT for
    all of them (web2 is the `backup`); pages and the API are still balanced (above)."""
    paths = ["/webhooks/telegram/987654/", "/api/v1/channels/987654/inbound/"]
    for path in paths * 3:
        status, _headers, body = request(stack, "POST", path, {"Content-Type": "application/json"})
        assert status in (401, 404), body[:300]  # no such channel: refused by the app itself
    time.sleep(0.5)  # daphne writes its access log line after the response
    web1, web2 = (log.read_text() for log in stack["daphne_logs"])
    for path in paths:
        served = f'"POST {path}"'  # daphne's access log line
        assert web1.count(served) == 3, f"web1 served {path} {web1.count(served)} of 3 times"
        assert served not in web2


def test_webhooks_go_to_web2_while_web1_is_down(stack):
    """web2 is web1's `backup`: a stopped web1 costs a retry inside nginx, not a lost delivery.
    web1 is started again afterwards (the other tests share this stack)."""
    path = "/api/v1/channels/987654/inbound/"
    served = f'"POST {path}"'
    web1, web2 = stack["processes"][:2]
    before = stack["daphne_logs"][1].read_text().count(served)
    stop(web1)
    try:
        for _ in range(3):
            status, _headers, body = request(
                stack, "POST", path, {"Content-Type": "application/json"}
            )
            assert status in (401, 404), body[:300]  # answered by the app, not a 502 from nginx
        time.sleep(0.5)  # daphne writes its access log line after the response
        assert stack["daphne_logs"][1].read_text().count(served) == before + 3
    finally:
        stack["processes"][0] = stack["start_daphne"](0)
        wait_for_port(stack["web_ports"][0], stack["processes"][0])
    # Back on web1 once it answers again (nginx retries a failed primary after fail_timeout,
    # 10 s; until then web2 keeps answering, so every request still gets the app's answer).
    for _ in range(3):
        status, _headers, body = request(stack, "POST", path, {"Content-Type": "application/json"})
        assert status in (401, 404), body[:300]


def test_static_files_come_from_nginx_not_daphne(stack):
    status, headers, body = request(stack, "GET", "/static/probe.css")
    assert status == 200
    assert body == b"body { color: teal; }\n"
    assert headers["Content-Type"] == "text/css"
    assert "immutable" in headers["Cache-Control"]
    time.sleep(0.5)
    assert all("probe.css" not in log.read_text() for log in stack["daphne_logs"])


def test_protected_media_range_is_served_by_nginx_after_django_checks(stack):
    cookie = {"Cookie": f"sessionid={stack['cookie']}"}
    status, headers, body = request(
        stack, "GET", stack["media_url"], {**cookie, "Range": "bytes=100-199"}
    )
    assert status == 206, body[:300]
    assert headers["Content-Range"] == "bytes 100-199/1000"
    assert headers["Content-Type"] == "video/mp4"
    assert body == MEDIA_BYTES[100:200]
    assert "X-Accel-Redirect" not in headers

    status, headers, body = request(stack, "GET", stack["media_url"], cookie)
    assert status == 200
    assert body == MEDIA_BYTES

    # Without a session Django refuses before any redirect; the internal location is closed.
    status, _, body = request(stack, "GET", stack["media_url"], {"Range": "bytes=0-9"})
    assert status == 404  # not a browser page load: no login redirect
    assert body != MEDIA_BYTES[:10]
    status, headers, _ = request(stack, "GET", stack["media_url"], {"Accept": "text/html"})
    assert status == 302 and "/accounts/login/" in headers["Location"]
    status, _, _ = request(stack, "GET", f"/protected-media/{stack['media_file']}")
    assert status == 404


def test_media_served_by_nginx_keeps_the_safe_headers(stack):
    """X-Accel path: an inline video and an uploaded HTML "document" (a download, no script)."""
    cookie = {"Cookie": f"sessionid={stack['cookie']}"}
    status, headers, _ = request(stack, "GET", stack["media_url"], cookie)
    assert status == 200
    assert headers["Content-Disposition"].startswith("inline")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert "X-Accel-Redirect" not in headers

    status, headers, body = request(stack, "GET", stack["html_url"], cookie)
    assert status == 200 and body == b"<script>alert(document.cookie)</script>"
    assert headers["Content-Disposition"] == 'attachment; filename="invoice.html"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "sandbox" in headers["Content-Security-Policy"]


def test_a_contacts_picture_is_served_by_nginx_with_its_caching_header(stack):
    """X-Accel path: nginx keeps Django's Cache-Control (private: the viewer's permission)."""
    cookie = {"Cookie": f"sessionid={stack['cookie']}"}
    status, headers, body = request(stack, "GET", stack["avatar_url"], cookie)
    assert status == 200, body[:300]
    assert body == b"avatar-probe"
    assert headers["Content-Type"] == "image/png"
    assert headers["Cache-Control"] == "private, max-age=86400"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert request(stack, "GET", stack["avatar_url"])[0] == 404


def test_websocket_upgrade_reaches_the_ws_service(stack):
    """The handshake goes through nginx to compose's `ws` command and is answered by the inbox
    consumer."""

    def handshake(cookie: str | None) -> tuple[str, str, bytes]:
        lines = [
            "GET /ws/inbox/ HTTP/1.1",
            f"Host: 127.0.0.1:{stack['port']}",
            f"Origin: http://127.0.0.1:{stack['port']}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        if cookie:
            lines.append(f"Cookie: sessionid={cookie}")
        with socket.create_connection(("127.0.0.1", stack["port"]), timeout=15) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            if cookie is None:  # the consumer's close frame follows the handshake
                while len(rest) < 4:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    rest += chunk
        head = head.decode("latin-1")
        return head.split("\r\n", 1)[0], head, rest

    status_line, head, _ = handshake(stack["cookie"])
    assert status_line.startswith("HTTP/1.1 101"), head
    assert "upgrade: websocket" in head.lower()
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455 accept for the key above

    # Anonymous: the consumer (not nginx) answers, accepting and closing at once with its
    # "unauthenticated" code: proof the upgrade reached the application.
    status_line, head, frame = handshake(None)
    assert status_line.startswith("HTTP/1.1 101"), head
    assert frame[0] == 0x88, frame  # FIN + close
    code = int.from_bytes(frame[2:4], "big")
    assert code == CLOSE_UNAUTHENTICATED
