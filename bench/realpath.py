#!/usr/bin/env python
"""Real-path webhook benchmark: nginx → the app servers → the webhook log → the worker → the
inbox websocket, driven open-loop from another process. Prints one JSON document.

    REDIS_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/realpath.py            # 60 s shapes
    … bench/realpath.py --seconds 15 --shapes whatsapp,flood --server daphne       # quick / A-B

What runs (as docker-compose.yml runs it, on loopback): nginx on a free port with a config
generated from the same locations as nginx/switchboard.conf; the HTTP app server (`uvicorn`
with httptools/uvloop, N workers — or `--server daphne`/`granian`) behind it; one uvicorn for
/ws/ as compose's `ws` (`--ws-server daphne` for the A/B); the webhook drainer(s) (`manage.py drain_webhooks`,
`--drainers`) and the Celery fallback (`celery -Q celery-webhooks`); PostgreSQL and Redis
already running.
The database (`--database-url`, default switchboard_realpath on 127.0.0.1) is dropped and
created anew unless `--reuse`.

Shapes, each reported on its own with `targets_met` per target:
- `api`, `whatsapp`, `telegram`: single-message webhooks (one message per HTTP request, as the
  platforms deliver them), 10 % of them exact redeliveries of an earlier one, offered open-loop
  at `--rate` per second for `--seconds`. Reported: accepted/s, acceptance latency (from the
  moment each request was *due*, so a stalled server cannot hide its queue), how soon each
  message is visible on an inbox websocket measured from the moment its request was written
  (its arrival), and whether anything was lost or doubled (in the database and on the socket).
- `flood`: 5,000 messages into 50 existing conversations offered at 2.5× `--rate`; reported:
  how fast they were absorbed (first send → last visible on the socket).
Anchors in the same run: raw PostgreSQL single-row INSERT+COMMIT rate (pgbench, 8 clients)
and the rate of a trivial endpoint (`GET /health/live/`) through the same nginx and servers,
closed-loop over 64 connections; beside it, each webhook shape's capacity (the same closed
loop, same connections, same seconds: `capacity`, `share_of_trivial_rate`), measured after
the open-loop shapes, as deployed and with the drainers paused (the accept path alone).
`os.getloadavg()` before and after each shape: on a shared machine compare each
figure with its same-run anchors, not with another run's absolute numbers.

The load generator is a raw asyncio HTTP/1.1 client over kept-alive connections, not httpx or
locust: on this 2-core machine the generator shares the CPU with nginx, the servers, the worker
and PostgreSQL, and httpx spends roughly ten times more CPU per request than writing prepared
bytes and reading a Content-Length framed answer, so it would measure itself. Every request
is prepared (signed) before the clock starts; `wrk` is not installed, and its Lua scripting
would have to sign each WhatsApp body by hand. It is open-loop: requests are due at fixed
times whatever the answers do, and a fixed set of connections take them from one queue.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ itself is on sys.path: the project root must come first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/switchboard_realpath"
TARGET_RATE = 1000
TARGET_P99_MS = 250
TARGET_VISIBLE_P95_MS = 1000
SECRET = "realpath-" + "k" * 40
TOKEN_RE = re.compile(r"\brp(\d+)x(\d+)\b")
# The same tokens found in a raw frame: no decoding, no word boundaries (5-10x faster, and the
# 200 `reads` sockets scan every frame in the bench's own process).
TOKEN_BYTES_RE = re.compile(rb"rp\d+x\d+")
SHAPE_IDS = {"api": 1, "whatsapp": 2, "telegram": 3, "flood": 4, "warm": 5, "reads": 6}
TARGET_READ_P95_MS = 25
WARM_TAG = 9


def log(text: str) -> None:
    print(f"[realpath {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--reuse", action="store_true", help="keep the database if it exists")
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "daphne", "granian"])
    parser.add_argument("--workers", type=int, default=2, help="HTTP server processes")
    parser.add_argument(
        "--ws-server",
        default="uvicorn",
        choices=["daphne", "uvicorn"],
        help="the /ws/ server: compose's `ws` command (uvicorn), or daphne for the A/B",
    )
    parser.add_argument(
        "--webhooks-to",
        default="one",
        choices=["all", "one"],
        help="webhook paths to the first HTTP process, the others as nginx `backup` (as "
        "nginx/switchboard.conf: one group commit for every delivery), or balanced like the rest",
    )
    parser.add_argument(
        "--balance",
        default="round_robin",
        choices=["least_conn", "round_robin", "shared_port"],
        help="uvicorn: one process per worker behind nginx's least_conn or round robin (as "
        "docker-compose.yml's web1/web2), or one process with N workers on one port",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="offered webhooks/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="per webhook shape")
    parser.add_argument("--shapes", default="api,whatsapp,telegram,flood")
    parser.add_argument(
        "--drainers",
        type=int,
        default=1,
        help="`manage.py drain_webhooks` processes (0: only the Celery drain, as before)",
    )
    parser.add_argument("--connections", type=int, default=256, help="generator connections")
    parser.add_argument("--senders", type=int, default=1000, help="distinct customers per shape")
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument(
        "--conversations", type=int, default=100_000, help="dataset size for `reads`"
    )
    parser.add_argument("--messages", type=int, default=2_000_000, help="dataset size for `reads`")
    parser.add_argument(
        "--reads-rate", type=float, default=50.0, help="`reads`: list/thread GETs per second"
    )
    parser.add_argument(
        "--reads-ingest-rate", type=float, default=20.0, help="`reads`: webhooks/s meanwhile"
    )
    parser.add_argument("--sockets", type=int, default=200, help="`reads`: inbox websockets")
    parser.add_argument(
        "--frames",
        default="batch",
        choices=["batch", "event"],
        help="`reads` sockets: one frame per committed batch as the inbox page asks "
        "(`?batch=1`), or one frame per event as an integrator's socket gets",
    )
    parser.add_argument("--skip-anchors", action="store_true")
    parser.add_argument(
        "--skip-capacity",
        action="store_true",
        help="skip the closed-loop capacity run of each webhook shape (vs the trivial rate)",
    )
    parser.add_argument("--anchor-seconds", type=float, default=10.0)
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument(
        "--extra-path",
        default=os.environ.get("REALPATH_EXTRA_PATH", ""),
        help="prepended to PYTHONPATH of the servers (a server installed outside the venv)",
    )
    return parser.parse_args(argv)


def base_env(args) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET,
        FIELD_ENCRYPTION_KEYS=SECRET,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        TRUSTED_PROXIES="127.0.0.1,::1",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="crm.settings",
    )
    if args.extra_path:
        env["PYTHONPATH"] = os.pathsep.join(
            [args.extra_path, str(ROOT), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
    return env


# --- the database and the fixtures ----------------------------------------------------------


def prepare_database(args) -> None:
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    server = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not args.reuse:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(args):
    os.environ.update({k: v for k, v in base_env(args).items() if k != "PYTHONPATH"})
    import django

    django.setup()
    from django.core.management import call_command

    log("migrating")
    call_command("migrate", verbosity=0)


def ensure_dataset(args) -> dict:
    """The bench/dataset.py inbox (as bench/run.py loads it, with the same `bench_meta` row, so
    either tool can `--reuse` the other's database): loaded unless the database holds one of
    the requested size already."""
    from django.db import connection

    from bench import dataset

    wanted = [args.conversations, args.messages]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_meta')")
        if cursor.fetchone()[0]:
            cursor.execute("SELECT info FROM bench_meta")
            info = json.loads(cursor.fetchone()[0])
            if info["requested"] != wanted:
                raise SystemExit(
                    f"the database holds a dataset of {info['requested']}, not {wanted}: "
                    "drop it (run without --reuse) or ask for the same sizes"
                )
            log(f"reusing the loaded dataset {wanted}")
            return info
        cursor.execute("SELECT 1 FROM communications_message LIMIT 1")
        if cursor.fetchone():
            raise SystemExit("the database has messages but no dataset: run without --reuse")
    log(f"loading {args.conversations:,} conversations / {args.messages:,} messages")
    info = dataset.load(args.conversations, args.messages, log=log)
    info["requested"] = wanted
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_meta (info text)")
        cursor.execute("INSERT INTO bench_meta VALUES (%s)", [json.dumps(info)])
    return info


def make_fixtures() -> dict:
    """Channels of the three kinds, a team seeing them, a manager's session cookie."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from communications.models import Channel
    from crm.models import Team

    tag = f"rp{int(time.time())}"
    team = Team.objects.create(name=tag)
    api = Channel.objects.create(
        kind=Channel.Kind.API, name=f"{tag} api", secrets={"inbound_token": "tok-" + tag}
    )
    whatsapp = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name=f"{tag} whatsapp",
        config={"phone_number_id": "106540352242922"},
        secrets={"app_secret": "app-" + tag, "access_token": "x", "verify_token": "v"},
    )
    telegram = Channel.objects.create(
        kind=Channel.Kind.TELEGRAM,
        name=f"{tag} telegram",
        secrets={"bot_token": "1:x", "webhook_secret": "tg-" + tag},
    )
    for channel in (api, whatsapp, telegram):
        channel.teams.add(team)
    user = get_user_model().objects.create_user(username=tag, password=tag)
    team.members.add(user)
    client = Client()
    client.force_login(user)
    return {
        "cookie": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "api": (api.pk, "tok-" + tag),
        "whatsapp": (whatsapp.pk, "app-" + tag),
        "telegram": (telegram.pk, "tg-" + tag),
    }


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.2)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream switchboard_http {{
        {balance}
{http_servers}
        keepalive 128;
    }}
    upstream switchboard_webhooks {{
{webhook_servers}
        keepalive 128;
    }}
    upstream switchboard_ws {{
        server 127.0.0.1:{ws_port};
        keepalive 16;
    }}
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    map $http_x_forwarded_proto $forwarded_proto {{ default $http_x_forwarded_proto; "" $scheme; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 50m;
        proxy_http_version 1.1;
        location /ws/ {{
            proxy_pass http://switchboard_ws;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $forwarded_proto;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
        location ~ ^/(webhooks/|api/v1/channels/[0-9]+/inbound/$) {{
            proxy_pass http://switchboard_webhooks;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $forwarded_proto;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
        location / {{
            proxy_pass http://switchboard_http;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $forwarded_proto;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


class Stack:
    """nginx, the HTTP server(s), the websocket server, the webhook worker."""

    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="realpath-"))
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.env = base_env(args)
        python = sys.executable
        bindir = Path(python).parent
        ws_port = free_port()
        if args.ws_server == "uvicorn":  # as docker-compose.yml's `ws` service
            ws_command = [python, "-m", "uvicorn", "crm.asgi:application", "--host", "127.0.0.1"]
            ws_command += ["--port", str(ws_port), "--ws", "websockets-sansio"]
            ws_command += ["--ws-per-message-deflate", "false", "--loop", "uvloop"]
            ws_command += ["--http", "httptools", "--no-access-log", "--lifespan", "off"]
            ws_command += ["--log-level", "warning", "--backlog", "4096"]
        else:  # the A/B: daphne, compose's `ws` until 2026-12-07
            ws_command = [str(bindir / "daphne"), "-b", "127.0.0.1", "-p", str(ws_port)]
            ws_command += ["--websocket_timeout", "86400", "crm.asgi:application"]
        self._spawn(f"{args.ws_server}-ws", ws_command, ws_port)
        http_ports = []
        if args.server == "daphne":
            for n in range(args.workers):
                port = free_port()
                self._spawn(
                    f"daphne-{n}",
                    [str(bindir / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
                    + ["crm.asgi:application"],
                    port,
                )
                http_ports.append(port)
        elif args.server == "uvicorn":
            # As docker-compose.yml runs them: web1 and web2, one uvicorn process each, nginx
            # balancing over both (`--balance`); `shared_port`: one uvicorn with N workers
            # behind one address (the kernel and nginx's idle connections pick the worker).
            shared = args.balance == "shared_port"
            for n in range(1 if shared else args.workers):
                port = free_port()
                self._spawn(
                    "uvicorn" if shared else f"uvicorn-{n}",
                    [python, "-m", "uvicorn", "crm.asgi:application", "--host", "127.0.0.1"]
                    + ["--port", str(port), "--workers", str(args.workers if shared else 1)]
                    + ["--http", "httptools", "--loop", "uvloop", "--no-proxy-headers"]
                    + ["--no-access-log", "--lifespan", "off", "--log-level", "warning"]
                    + ["--backlog", "4096"],
                    port,
                )
                http_ports.append(port)
        else:
            port = free_port()
            self._spawn(
                "granian",
                [python, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
                + ["--port", str(port), "--workers", str(args.workers), "--loop", "uvloop"]
                + ["--no-ws", "--log-level", "warning", "crm.asgi:application"],
                port,
            )
            http_ports.append(port)
        for n in range(args.drainers):
            self._spawn(f"drainer-{n}", [python, "manage.py", "drain_webhooks"], None)
        # The Celery fallback as docker-compose.yml runs it (one process; two without drainers,
        # as before the drainer existed).
        self._spawn(
            "worker-webhooks",
            [str(bindir / "celery"), "-A", "crm", "worker", "-Q", "celery-webhooks"]
            + ["--concurrency", "1" if args.drainers else "2", "--loglevel", "WARNING"]
            + ["-n", f"rp-{os.getpid()}@%h"],
            None,
        )
        self.port = free_port()
        conf = NGINX_CONF.format(
            tmp=self.tmp,
            port=self.port,
            ws_port=ws_port,
            http_servers="\n".join(f"        server 127.0.0.1:{p};" for p in http_ports),
            balance="least_conn;" if args.balance == "least_conn" else "",
            webhook_servers="\n".join(
                f"        server 127.0.0.1:{p}{' backup' if n and args.webhooks_to == 'one' else ''};"
                for n, p in enumerate(http_ports)
            ),
        )
        (self.tmp / "nginx.conf").write_text(conf)
        self._spawn("nginx", [self.args.nginx, "-c", str(self.tmp / "nginx.conf")], self.port)
        self.pids = {name: p.pid for name, p in self.processes}

    def _spawn(self, name, command, port):
        logfile = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))
        if port is not None:
            wait_port(port, process, f"{name} (log: {logfile.name})")

    def cpu_seconds(self) -> dict:
        """CPU used so far by each started process and its children."""
        out = {}
        for name, process in self.processes:
            total = 0.0
            for pid in [process.pid, *_children(process.pid)]:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            out[name] = round(total, 2)
        # One figure for the HTTP servers, however many processes run them.
        for name in [n for n in out if n.startswith("uvicorn-") and not n.endswith("-ws")]:
            out["uvicorn"] = round(out.get("uvicorn", 0.0) + out.pop(name), 2)
        return out

    def stop(self):
        for _name, process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _name, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(k) for k in kids]
    for kid in list(found):
        found += _children(kid)
    return found


# --- requests -------------------------------------------------------------------------------


def _wa_body(token: str, sender: int) -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [
                                {
                                    "profile": {"name": f"Customer {sender}"},
                                    "wa_id": f"1555{sender:07d}",
                                }
                            ],
                            "messages": [
                                {
                                    "from": f"1555{sender:07d}",
                                    "id": f"wamid.{token}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"Hello, is this in stock? {token}"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload).encode()


def build_requests(
    shape: str, fixtures: dict, count: int, senders: int, port: int, seed: int, tag: int = 0
):
    """Prepared request bytes and the token each carries; every tenth (after the first few)
    repeats an earlier request byte for byte (a platform's redelivery)."""
    import hashlib
    import hmac

    shape_id = tag or SHAPE_IDS[shape]
    host = f"Host: 127.0.0.1:{port}\r\nX-Forwarded-Proto: https\r\n"
    out: list[bytes] = []
    tokens: list[str] = []
    duplicate: list[bool] = []
    for i in range(count):
        if shape != "flood" and i >= 20 and i % 10 == 9:
            j = (i * 7919 + seed) % (i - 1)
            while duplicate[j]:
                j -= 1
            out.append(out[j])
            tokens.append(tokens[j])
            duplicate.append(True)
            continue
        token = f"rp{shape_id}x{i}"
        sender = i % senders
        if shape in ("api", "flood", "warm"):
            prefix = "flood" if shape in ("flood", "warm") else "api"
            channel_id, secret = fixtures["api"]
            body = json.dumps(
                {
                    "external_id": token,
                    "sender": {"id": f"{prefix}-cust-{sender}", "name": f"Customer {sender}"},
                    "text": f"Hello, is this in stock? {token}",
                }
            ).encode()
            head = (
                f"POST /api/v1/channels/{channel_id}/inbound/ HTTP/1.1\r\n{host}"
                f"Authorization: Bearer {secret}\r\nPrefer: respond-async\r\n"
            )
        elif shape == "whatsapp":
            channel_id, secret = fixtures["whatsapp"]
            body = _wa_body(token, sender)
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            head = (
                f"POST /webhooks/whatsapp/{channel_id}/ HTTP/1.1\r\n{host}"
                f"X-Hub-Signature-256: sha256={signature}\r\n"
            )
        else:
            channel_id, secret = fixtures["telegram"]
            body = json.dumps(
                {
                    "update_id": 900_000_000 + shape_id * 10_000_000 + i,
                    "message": {
                        "message_id": shape_id * 10_000_000 + i + 1,
                        "from": {"id": 5_000_000 + sender, "is_bot": False, "first_name": "C"},
                        "chat": {"id": 5_000_000 + sender, "type": "private", "first_name": "C"},
                        "date": int(time.time()),
                        "text": f"Hello, is this in stock? {token}",
                    },
                }
            ).encode()
            head = (
                f"POST /webhooks/telegram/{channel_id}/ HTTP/1.1\r\n{host}"
                f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\n"
            )
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        out.append(head.encode() + body)
        tokens.append(token)
        duplicate.append(False)
    return out, tokens, duplicate


# --- the load generator (its own process) ---------------------------------------------------


async def _read_response(reader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.find(b"\r\n", at + 2)
        await reader.readexactly(int(lower[at + 17 : end]))
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, b"connection: close" in lower


async def _generate(port, requests, rate, connections, closed_loop_seconds=0.0):
    """Open loop: request i is due at start + i/rate. Closed loop (anchor): as fast as the
    connections go, for closed_loop_seconds. Returns per request (due, sent, done, status)."""
    loop = asyncio.get_running_loop()
    n = len(requests)
    due = [0.0] * n
    sent = [0.0] * n
    done = [0.0] * n
    status = [0] * n
    queue: asyncio.Queue = asyncio.Queue()
    counter = {"next": 0}

    async def worker():
        reader = writer = None
        while True:
            if closed_loop_seconds:
                i = counter["next"]
                if i >= n or loop.time() > stop_at:
                    return
                counter["next"] += 1
                due[i] = time.time()
            else:
                i = await queue.get()
                if i is None:
                    return
            for _attempt in range(2):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    sent[i] = time.time()
                    writer.write(requests[i])
                    status[i], close = await _read_response(reader)
                    done[i] = time.time()
                    if close:
                        writer.close()
                        reader = writer = None
                    break
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    status[i] = -1
                    done[i] = time.time()

    start = time.time() + 0.2
    stop_at = loop.time() + 0.2 + closed_loop_seconds
    workers = [asyncio.ensure_future(worker()) for _ in range(connections)]
    if not closed_loop_seconds:
        interval = 1.0 / rate
        for i in range(n):
            due[i] = start + i * interval
            delay = due[i] - time.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            queue.put_nowait(i)
        for _ in workers:
            queue.put_nowait(None)
    await asyncio.gather(*workers)
    return due, sent, done, status


def _generator_process(port, requests, rate, connections, closed_loop_seconds, results):
    asyncio.events._set_running_loop(None)  # forked from inside the parent's running loop
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results.put(asyncio.run(_generate(port, requests, rate, connections, closed_loop_seconds)))


def run_generator(port, requests, rate, connections, closed_loop_seconds=0.0):
    """Start the generator in its own process; returns a function that waits for its result."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(
        target=_generator_process,
        args=(port, requests, rate, connections, closed_loop_seconds, results),
    )
    process.start()

    def wait():
        out = results.get()
        process.join()
        return out

    return wait


# --- the inbox websocket --------------------------------------------------------------------


class Inbox:
    """One manager's /ws/inbox/ through nginx: when each message (by its token) first shows."""

    def __init__(self, port: int, cookie: str):
        self.url = f"ws://127.0.0.1:{port}/ws/inbox/?batch=1"  # as the inbox page asks
        self.cookie = cookie
        self.seen: dict[str, float] = {}
        self.doubled: set[str] = set()
        self.ids: dict[int, str] = {}
        self.ready = asyncio.Event()
        self.task = None
        self.kinds: dict[str, int] = {}  # events by type (resync/stalled: the socket fell behind)

    async def start(self):
        self.task = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self.ready.wait(), 30)

    async def _run(self):
        import websockets

        headers = {
            "Cookie": f"sessionid={self.cookie}",
            "Origin": f"http://127.0.0.1:{self.url.split(':')[2].split('/')[0]}",
        }
        async with websockets.connect(
            self.url, additional_headers=headers, max_queue=None, ping_interval=None
        ) as ws:
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                for event in frame if isinstance(frame, list) else [frame]:  # batch=1: a list
                    await self.apply(ws, event, now)

    async def apply(self, ws, event: dict, now: float) -> None:
        kind = event.get("type")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == "message.created":
            data = event["data"]
            match = TOKEN_RE.search(data.get("content") or "")
            if match:
                token = match[0]
                if token in self.seen and self.ids.get(data["id"]) != token:
                    self.doubled.add(token)
                self.seen.setdefault(token, now)
                self.ids[data["id"]] = token
        elif kind == "ping":
            await ws.send(json.dumps({"type": "pong", "seq": event.get("seq")}))
        elif kind == "ready":
            self.ready.set()

    async def wait_for(self, tokens: set[str], seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline and not tokens <= self.seen.keys():
            await asyncio.sleep(0.1)


# --- figures --------------------------------------------------------------------------------


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def stored_counts(channel_id: int, tokens: set[str]) -> tuple[int, int]:
    """(messages carrying one of the tokens, distinct tokens among them) in the database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT substring(content from 'rp[0-9]+x[0-9]+'))"
            " FROM communications_message WHERE channel_id = %s AND direction = 'in'"
            " AND substring(content from 'rp[0-9]+x[0-9]+') = ANY(%s)",
            [channel_id, list(tokens)],
        )
        return cursor.fetchone()


async def run_shape(shape, args, fixtures, stack, inbox) -> dict:
    if shape == "flood":
        count, rate = args.flood, args.rate * 2.5
        senders = 50
    else:
        count, rate = int(args.rate * args.seconds), args.rate
        senders = args.senders
    requests, tokens, duplicate = build_requests(
        shape, fixtures, count, senders, stack.port, seed=7
    )
    if shape == "flood":  # the 50 conversations exist before the flood
        warm, warm_tokens, _ = build_requests("warm", fixtures, 50, 50, stack.port, seed=7)
        await asyncio.to_thread(run_generator(stack.port, warm, 100, 10))
        await inbox.wait_for(set(warm_tokens), 15)
    channel_id = fixtures["api" if shape == "flood" else shape][0]
    unique = {t for t, d in zip(tokens, duplicate, strict=True) if not d}
    log(f"{shape}: {count} requests at {rate:.0f}/s ({len(unique)} distinct messages)")
    load_before = loadavg()
    cpu_before = stack.cpu_seconds()
    kinds_before = dict(inbox.kinds)
    wait = run_generator(stack.port, requests, rate, args.connections)
    due, sent, done, status = await asyncio.to_thread(wait)
    await inbox.wait_for(unique, 20)
    cpu_after = stack.cpu_seconds()
    accepted = [i for i in range(count) if 200 <= status[i] < 300]
    window = max(done) - min(due)
    latency_ms = [(done[i] - due[i]) * 1000 for i in accepted]
    first_sent: dict[str, float] = {}
    for i in range(count):
        if sent[i]:
            first_sent.setdefault(tokens[i], sent[i])
    visible_ms = [
        (inbox.seen[t] - first_sent[t]) * 1000
        for t in unique
        if t in inbox.seen and t in first_sent
    ]
    stored, stored_distinct = await asyncio.to_thread(stored_counts, channel_id, unique)
    statuses: dict[str, int] = {}
    for s in status:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    result = {
        "requests": count,
        "offered_per_s": round(rate, 1),
        "duplicates_offered": count - len(unique),
        "statuses": statuses,
        "accepted_per_s": round(len(accepted) / window, 1) if window > 0 else None,
        "acceptance_ms": {
            "p50": pct(latency_ms, 50),
            "p99": pct(latency_ms, 99),
            "max": pct(latency_ms, 100),
            "over_1s_pct": round(
                100 * sum(x > 1000 for x in latency_ms) / max(1, len(latency_ms)), 2
            ),
        },
        "visible_ms": {
            "p50": pct(visible_ms, 50),
            "p95": pct(visible_ms, 95),
            "p99": pct(visible_ms, 99),
            "max": pct(visible_ms, 100),
        },
        "messages": {
            "expected": len(unique),
            "stored": stored,
            "stored_distinct": stored_distinct,
            "visible": len(unique & inbox.seen.keys()),
            "doubled_on_socket": len(unique & inbox.doubled),
        },
        "socket_events": {
            k: v - kinds_before.get(k, 0)
            for k, v in inbox.kinds.items()
            if v != kinds_before.get(k, 0)
        },
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0), 1) for k in cpu_after},
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    lost = len(unique) - stored_distinct
    doubled = stored - stored_distinct + result["messages"]["doubled_on_socket"]
    if shape == "flood":
        last_visible = max((inbox.seen[t] for t in unique if t in inbox.seen), default=None)
        absorbed = (
            len(unique & inbox.seen.keys()) / (last_visible - min(sent)) if last_visible else 0
        )
        result["absorbed_per_s"] = round(absorbed, 1)
        result["targets_met"] = {
            "absorbed_ge_1000_per_s": absorbed >= TARGET_RATE,
            "nothing_lost_or_doubled": lost == 0 and doubled == 0,
        }
    else:
        sustained = len(accepted) >= 0.99 * (count - 0) and window <= args.seconds * 1.05 + 1
        result["targets_met"] = {
            "accepted_ge_1000_per_s_sustained": bool(
                sustained and (result["accepted_per_s"] or 0) >= TARGET_RATE * 0.99
            ),
            "acceptance_p99_le_250ms": (pct(latency_ms, 99) or 1e9) <= TARGET_P99_MS,
            "visible_p95_le_1s": len(visible_ms) == len(unique)
            and (pct(visible_ms, 95) or 1e9) <= TARGET_VISIBLE_P95_MS,
            "nothing_lost_or_doubled": lost == 0 and doubled == 0,
        }
    log(f"{shape}: {json.dumps(result)}")
    return result


async def capacity_shape(shape, args, fixtures, stack, inbox, trivial) -> dict:
    """As deployed (drainers running), and then the accept path alone: the drainers paused
    (SIGSTOP) while the closed loop runs, resumed after — the door's own ceiling."""
    deployed = await _capacity_run(shape, args, fixtures, stack, inbox, trivial, seed=11)
    drainers = [pid for name, pid in stack.pids.items() if name.startswith("drainer")]
    for pid in drainers:
        os.kill(pid, signal.SIGSTOP)
    try:
        alone = await _capacity_run(
            shape, args, fixtures, stack, inbox, trivial, seed=13, resume=drainers
        )
    finally:
        for pid in drainers:
            os.kill(pid, signal.SIGCONT)
    return deployed | {"accept_path_alone": alone}


async def _capacity_run(shape, args, fixtures, stack, inbox, trivial, seed, resume=()) -> dict:
    """The most webhooks of this shape the stack accepts: closed loop over the same 64
    connections as the trivial-endpoint anchor, for --anchor-seconds, so the two rates
    compare (issue 11: ≥ 50 % of the trivial rate). Then waits until the backlog is on the
    socket, so the next shape starts on an empty log, and reports how long that took."""
    count = int(20_000 * args.anchor_seconds)
    tag = SHAPE_IDS[shape] + (40 if resume else 20)
    requests, tokens, duplicate = build_requests(
        shape, fixtures, count, args.senders, stack.port, seed=seed, tag=tag
    )
    what = "drainers paused" if resume else "as deployed"
    log(f"{shape} capacity ({what}): closed loop, 64 connections, {args.anchor_seconds:.0f} s")
    load_before = loadavg()
    cpu_before = stack.cpu_seconds()
    kinds_before = dict(inbox.kinds)
    wait = run_generator(stack.port, requests, 0, 64, closed_loop_seconds=args.anchor_seconds)
    due, sent, done, status = await asyncio.to_thread(wait)
    cpu_after = stack.cpu_seconds()
    taken = [i for i in range(count) if done[i]]
    accepted = [i for i in taken if 200 <= status[i] < 300]
    window = max(done[i] for i in taken) - min(due[i] for i in taken) if taken else 0
    latency_ms = [(done[i] - due[i]) * 1000 for i in accepted]
    statuses: dict[str, int] = {}
    for i in taken:
        statuses[str(status[i])] = statuses.get(str(status[i]), 0) + 1
    unique = {tokens[i] for i in accepted if not duplicate[i]}
    for pid in resume:
        os.kill(pid, signal.SIGCONT)
    drain_started = time.time()
    await inbox.wait_for(unique, 300)
    rate = len(accepted) / window if window else 0
    result = {
        "accepted_per_s": round(rate, 1),
        "acceptance_ms": {"p50": pct(latency_ms, 50), "p99": pct(latency_ms, 99)},
        "statuses": statuses,
        "connections": 64,
        "seconds": args.anchor_seconds,
        "messages_accepted": len(unique),
        "visible_on_socket": len(unique & inbox.seen.keys()),
        "backlog_visible_after_s": round(time.time() - drain_started, 1),
        # A gap between accepted and visible: did the socket hear `stalled` or `resync`?
        "socket_events": {
            k: v - kinds_before.get(k, 0)
            for k, v in inbox.kinds.items()
            if v != kinds_before.get(k, 0)
        },
        "cpu_seconds_while_accepting": {
            k: round(cpu_after[k] - cpu_before.get(k, 0), 1) for k in cpu_after
        },
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    if trivial:
        result["share_of_trivial_rate"] = round(rate / trivial, 3)
    log(f"{shape} capacity ({what}): {json.dumps(result)}")
    return result


# --- reads: the list and the thread through HTTP, with sockets open and messages arriving ----

READS_TAG = 7  # token tag of the warm-up webhooks of `reads` (not counted)


def reads_fixtures(info: dict, args) -> dict:
    """For `reads` on the bench/dataset.py inbox: the API channel's inbound secret (set anew,
    so a dataset loaded under other keys works), conversations of that channel to write into,
    `--sockets` managers of the bench team with a session each, and the read cases: the
    requests of bench/measure.py's conversation_list and message_pages, same parameters."""
    from urllib.parse import urlencode

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.measure import conversation_list_cases, message_page_cases
    from communications.models import Channel, ContactIdentity, Conversation
    from crm.models import Team

    api = Channel.objects.get(pk__in=info["channels"], kind=Channel.Kind.API)
    secret = f"reads-{int(time.time())}"
    api.secrets = {**api.secrets, "inbound_token": secret}
    api.save(update_fields=["secrets"])
    targets = list(
        ContactIdentity.objects.filter(channel=api)
        .exclude(contact_id__in=info["huge_threads"])
        .order_by("contact_id")
        .values_list("external_id", flat=True)[:1000]
    )
    # One manager per socket, all in the team that sees the API channel: every message that
    # arrives is an event on every socket (the heaviest fan-out 200 open inboxes can get).
    team = Team.objects.get(name="Bench team")
    User = get_user_model()
    cookies = []
    for n in range(args.sockets):
        user, _ = User.objects.get_or_create(username=f"reads-ws-{n}")
        team.members.add(user)
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies[settings.SESSION_COOKIE_NAME].value)

    # The cases of bench/measure.py's conversation_list and message_pages, same parameters.
    list_url, lists, depth = conversation_list_cases(info)
    thread_url, threads = message_page_cases(info)
    thread = info["huge_threads"][0]
    # An ordinary thread: the top of the manager's inbox that is not one of the huge ones.
    ordinary = (
        Conversation.objects.filter(channel_id__in=info["visible_channels"], is_archived=False)
        .exclude(pk__in=info["huge_threads"])
        .order_by("-last_message_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    cases = {f"list.{k}": (list_url, v) for k, v in lists.items()}
    cases |= {f"thread.{k}": (thread_url, v) for k, v in threads.items()}
    cases["thread.ordinary_thread_newest_50"] = (f"/api/v1/conversations/{ordinary}/messages/", {})
    return {
        "api": (api.pk, secret),
        "targets": targets,
        "cookies": cookies,
        "token": info["manager_token"],
        "cases": {
            name: f"{path}?{urlencode(params)}" if params else path
            for name, (path, params) in cases.items()
        },
        "huge_thread": thread,
        "huge_thread_messages": info["huge_thread_size"],
        "ordinary_thread": ordinary,
        "deep_cursor_offset": depth,
    }


def reads_get_requests(reads: dict, port: int, count: int):
    """`count` prepared GETs, the cases in turn (so each is spread over the whole run)."""
    names = list(reads["cases"])
    head = (
        f"Host: 127.0.0.1:{port}\r\nX-Forwarded-Proto: https\r\n"
        f"Authorization: Token {reads['token']}\r\nAccept: application/json\r\n\r\n"
    )
    prepared = {n: f"GET {reads['cases'][n]} HTTP/1.1\r\n{head}".encode() for n in names}
    order = [names[i % len(names)] for i in range(count)]
    return [prepared[n] for n in order], order


def reads_ingest_requests(reads: dict, port: int, count: int, tag: str):
    """API-channel inbound webhooks (one message each) into existing conversations."""
    channel_id, secret = reads["api"]
    out, tokens = [], []
    for i in range(count):
        token = f"rp{tag}x{i}"
        body = json.dumps(
            {
                "external_id": token,
                "sender": {"id": reads["targets"][i % len(reads["targets"])], "name": "Customer"},
                "text": f"Is my order on its way? {token}",
            }
        ).encode()
        out.append(
            (
                f"POST /api/v1/channels/{channel_id}/inbound/ HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nX-Forwarded-Proto: https\r\n"
                f"Authorization: Bearer {secret}\r\nPrefer: respond-async\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        tokens.append(token)
    return out, tokens


class Watcher:
    """One of the `reads` inbox sockets, as a raw RFC 6455 client over asyncio streams.

    200 sockets each told of 20 messages/s receive ~8,000 frames/s (one per event; ~4,000
    with `?batch=1`); through the `websockets`
    library (per-frame objects, UTF-8 decoding, a task switch each) that took most of a core of
    this 2-core machine in the generator's process, i.e. the benchmark measured itself. Here a
    read takes whatever frames have arrived, and a frame is only looked into for the message
    tokens it carries, or answered (the inbox's `ping`, the protocol's ping); no compression
    is offered, as autobahn (daphne) would not accept it. It records when each token first
    shows on this socket."""

    def __init__(self, port: int, cookie: str, frames: str = "batch"):
        self.port = port
        self.cookie = cookie
        self.query = "?batch=1" if frames == "batch" else ""
        self.seen: dict[str, float] = {}
        self.frames = 0
        self.ready = asyncio.Event()
        self.closed: str | None = None
        self.task = None
        self.writer = None

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x80 | opcode])
        if size < 126:
            head += bytes([0x80 | size])
        else:
            head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def _run(self):
        import base64

        try:
            reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            key = base64.b64encode(os.urandom(16)).decode()
            self.writer.write(
                (
                    f"GET /ws/inbox/{self.query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Origin: http://127.0.0.1:{self.port}\r\n"
                    f"Cookie: sessionid={self.cookie}\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"101":
                raise ConnectionError(head[:12].decode(errors="replace"))
            buffer = bytearray()
            while True:
                chunk = await reader.read(262144)
                if not chunk:
                    self.closed = "connection closed"
                    break
                now = time.time()
                buffer += chunk
                at = 0
                while len(buffer) - at >= 2:
                    opcode = buffer[at] & 0x0F
                    size = buffer[at + 1] & 0x7F
                    start = at + 2
                    if size == 126:
                        if len(buffer) - at < 4:
                            break
                        size = int.from_bytes(buffer[at + 2 : at + 4], "big")
                        start = at + 4
                    elif size == 127:
                        if len(buffer) - at < 10:
                            break
                        size = int.from_bytes(buffer[at + 2 : at + 10], "big")
                        start = at + 10
                    if len(buffer) < start + size:
                        break
                    payload = bytes(buffer[start : start + size])
                    at = start + size
                    self.frames += 1
                    if opcode in (0, 1):  # text (autobahn does not fragment these)
                        self._text(payload, now)
                    elif opcode == 9:
                        self._send(0xA, payload)
                    elif opcode == 8:
                        code = int.from_bytes(payload[:2], "big") if payload else None
                        self.closed = f"closed {code}"
                        return
                del buffer[:at]
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            self.closed = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            self.ready.set()

    def _text(self, payload: bytes, now: float) -> None:
        if b'"message.created"' in payload:
            for match in TOKEN_BYTES_RE.finditer(payload):
                self.seen.setdefault(match[0].decode(), now)
        elif b'"ping"' in payload[:40]:
            seq = json.loads(payload).get("seq")
            self._send(0x1, json.dumps({"type": "pong", "seq": seq}).encode())
        elif b'"ready"' in payload[:40]:
            self.ready.set()


def bench_cpu_seconds() -> dict:
    """CPU of this process (the sockets) and of its finished generator processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "bench_sockets": own.ru_utime + own.ru_stime,
        "bench_generators": kids.ru_utime + kids.ru_stime,
    }


async def open_watchers(port: int, cookies: list[str], frames: str) -> list[Watcher]:
    """Connect them 20 at a time (as 200 tabs would not all open in the same millisecond)."""
    watchers = [Watcher(port, c, frames) for c in cookies]
    gate = asyncio.Semaphore(20)

    async def start(w: Watcher):
        async with gate:
            w.task = asyncio.ensure_future(w._run())
            try:
                await asyncio.wait_for(w.ready.wait(), 60)
            except TimeoutError:
                pass

    await asyncio.gather(*(start(w) for w in watchers))
    return watchers


async def run_reads(args, reads: dict, stack) -> dict:
    port = stack.port
    log(f"reads: opening {len(reads['cookies'])} inbox sockets")
    watchers = await open_watchers(port, reads["cookies"], args.frames)
    ready = sum(w.ready.is_set() and w.closed is None for w in watchers)
    log(f"reads: {ready} sockets ready")
    # Warm: every case a few times on every server process, and the webhook path; not counted.
    warm, _ = reads_get_requests(reads, port, len(reads["cases"]) * 6)
    await asyncio.to_thread(run_generator(port, warm, 20, 8))
    # Tokens (the messages' external ids) are new on every run, or a `--reuse` run's
    # webhooks would all be recognised as redeliveries of the last run's and stored once.
    stamp = int(time.time())
    warm, _ = reads_ingest_requests(reads, port, 20, f"{READS_TAG}{stamp}")
    await asyncio.to_thread(run_generator(port, warm, 10, 4))
    await asyncio.sleep(2)

    count = int(args.reads_rate * args.seconds)
    gets, order = reads_get_requests(reads, port, count)
    ingest_count = int(args.reads_ingest_rate * args.seconds)
    posts, tokens = reads_ingest_requests(reads, port, ingest_count, f"{SHAPE_IDS['reads']}{stamp}")
    log(
        f"reads: {count} GETs at {args.reads_rate:g}/s and {ingest_count} webhooks at "
        f"{args.reads_ingest_rate:g}/s for {args.seconds:g} s, {ready} sockets open"
    )
    load_before = loadavg()
    cpu_before = stack.cpu_seconds() | bench_cpu_seconds()
    frames_before = sum(w.frames for w in watchers)
    wait_posts = run_generator(port, posts, args.reads_ingest_rate, 8)
    wait_gets = run_generator(port, gets, args.reads_rate, 16)
    g_due, _g_sent, g_done, g_status = await asyncio.to_thread(wait_gets)
    p_due, p_sent, p_done, p_status = await asyncio.to_thread(wait_posts)
    load_after = loadavg()
    cpu_after = stack.cpu_seconds() | bench_cpu_seconds()
    wanted = set(tokens)
    deadline = time.time() + 15
    while time.time() < deadline and not all(
        wanted <= w.seen.keys() for w in watchers if w.closed is None
    ):
        await asyncio.sleep(0.2)

    cases: dict[str, dict] = {}
    for name in reads["cases"]:
        idx = [i for i, n in enumerate(order) if n == name]
        ok = [i for i in idx if 200 <= g_status[i] < 300]
        ms = [(g_done[i] - g_due[i]) * 1000 for i in ok]
        statuses: dict[str, int] = {}
        for i in idx:
            statuses[str(g_status[i])] = statuses.get(str(g_status[i]), 0) + 1
        cases[name] = {
            "requests": len(idx),
            "non_2xx": len(idx) - len(ok),
            "statuses": statuses,
            "p50_ms": pct(ms, 50),
            "p95_ms": pct(ms, 95),
            "p99_ms": pct(ms, 99),
            "max_ms": pct(ms, 100),
        }

    def endpoint(prefix: str) -> dict:
        mine = {k: v for k, v in cases.items() if k.startswith(prefix)}
        idx = [i for i, n in enumerate(order) if n.startswith(prefix)]
        ms = [(g_done[i] - g_due[i]) * 1000 for i in idx if 200 <= g_status[i] < 300]
        return {
            "requests": len(idx),
            "non_2xx": sum(v["non_2xx"] for v in mine.values()),
            "p50_ms": pct(ms, 50),
            "p95_ms": pct(ms, 95),
            "p99_ms": pct(ms, 99),
            "worst_case_p95_ms": max((v["p95_ms"] or 1e9) for v in mine.values()),
        }

    list_figures, thread_figures = endpoint("list."), endpoint("thread.")
    accepted = [i for i in range(ingest_count) if 200 <= p_status[i] < 300]
    p_statuses: dict[str, int] = {}
    for st in p_status:
        p_statuses[str(st)] = p_statuses.get(str(st), 0) + 1
    open_now = [w for w in watchers if w.closed is None]
    visible_ms = [
        (w.seen[t] - p_sent[i]) * 1000
        for w in open_now
        for i, t in enumerate(tokens)
        if t in w.seen and p_sent[i]
    ]
    seen_counts = sorted(len(wanted & w.seen.keys()) for w in watchers)
    closed_reasons: dict[str, int] = {}
    for w in watchers:
        if w.closed is not None:
            closed_reasons[w.closed] = closed_reasons.get(w.closed, 0) + 1
    for w in watchers:
        if w.task:
            w.task.cancel()
    window = max(g_done) - min(g_due) if count else 0
    result = {
        "dataset": {
            "huge_thread": reads["huge_thread"],
            "huge_thread_messages": reads["huge_thread_messages"],
            "ordinary_thread": reads["ordinary_thread"],
            "deep_cursor_offset": reads["deep_cursor_offset"],
        },
        "offered_reads_per_s": args.reads_rate,
        "served_reads_per_s": round(sum(200 <= x < 300 for x in g_status) / window, 1)
        if window
        else None,
        "list": list_figures,
        "thread": thread_figures,
        "cases": cases,
        "ingest": {
            "offered_per_s": args.reads_ingest_rate,
            "requests": ingest_count,
            "statuses": p_statuses,
            "acceptance_p95_ms": pct([(p_done[i] - p_due[i]) * 1000 for i in accepted], 95),
        },
        "sockets": {
            "frames": args.frames,
            "asked": len(watchers),
            "ready_at_start": ready,
            "open_at_end": len(open_now),
            "received_every_message": sum(wanted <= w.seen.keys() for w in watchers),
            "messages_received_min_median": [
                seen_counts[0] if seen_counts else 0,
                seen_counts[len(seen_counts) // 2] if seen_counts else 0,
            ],
            "messages_sent": len(wanted),
            "frames_received": sum(w.frames for w in watchers) - frames_before,
            "visible_ms": {"p50": pct(visible_ms, 50), "p95": pct(visible_ms, 95)},
            "closed": closed_reasons,
        },
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0), 1) for k in cpu_after},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    everyone_heard = result["sockets"]["received_every_message"] == len(watchers) == args.sockets
    result["targets_met"] = {
        "list_p95_le_25ms": list_figures["non_2xx"] == 0
        and list_figures["worst_case_p95_ms"] <= TARGET_READ_P95_MS,
        "thread_p95_le_25ms": thread_figures["non_2xx"] == 0
        and thread_figures["worst_case_p95_ms"] <= TARGET_READ_P95_MS,
        "sockets_all_open_and_receiving": everyone_heard,
        "ingest_all_accepted": len(accepted) == ingest_count,
    }
    log(f"reads: {json.dumps(result)}")
    return result


# What the webhook shapes update (conversations) or insert and settle (the log, messages, events).
WRITTEN_TABLES = [
    "communications_conversation",
    "communications_message",
    "communications_realtimeevent",
    "communications_webhookdelivery",
]


def vacuum_if_autovacuum_is_off(args) -> dict:
    """With autovacuum off (this machine's PostgreSQL: conf.d/90-ci.conf), the webhook shapes
    leave the conversations table with ~3 dead rows per live one, and `reads` after them would
    measure that bloat — which no production server, autovacuuming, has. So VACUUM (ANALYZE)
    what they wrote, as autovacuum would have by then, and say so in the output."""
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
        if autovacuum == "on":
            return {"autovacuum": autovacuum, "vacuumed": []}
        started = time.monotonic()
        conn.execute(f"VACUUM (ANALYZE) {', '.join(WRITTEN_TABLES)}")
    return {
        "autovacuum": autovacuum,
        "vacuumed": WRITTEN_TABLES,
        "vacuum_seconds": round(time.monotonic() - started, 1),
    }


def pgbench_anchor(args) -> dict:
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS realpath_anchor (id bigserial, payload text)")
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text("INSERT INTO realpath_anchor (payload) VALUES ('x');\n")
    name = args.database_url.rsplit("/", 1)[1]
    rest = args.database_url.split("://", 1)[1].rsplit("/", 1)[0]
    user, _, hostport = rest.rpartition("@")
    host, _, dbport = hostport.partition(":")
    command = [
        shutil.which("pgbench") or "pgbench",
        "-n", "-c", "8", "-j", "2", "-T", str(int(args.anchor_seconds)),
        "-h", host, "-p", dbport or "5432", "-U", user.split(":")[0] or "postgres",
        "-f", str(script), name,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    match = re.search(r"tps = ([0-9.]+)", out)
    return {"single_row_insert_commits_per_s": float(match[1]) if match else None, "clients": 8}


async def trivial_anchor(args, stack) -> dict:
    request = (
        f"GET /health/live/ HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n"
        "X-Forwarded-Proto: https\r\n\r\n"
    ).encode()
    requests = [request] * 2_000_000
    wait = run_generator(stack.port, requests, 0, 64, closed_loop_seconds=args.anchor_seconds)
    due, sent, done, status = await asyncio.to_thread(wait)
    ok = [i for i, s in enumerate(status) if s == 200]
    window = max(done[i] for i in ok) - min(due[i] for i in ok) if ok else 0
    latency = [(done[i] - due[i]) * 1000 for i in ok]
    return {
        "endpoint": "GET /health/live/ (ASGI, no Django view)",
        "requests_per_s": round(len(ok) / window, 1) if window else None,
        "p99_ms": pct(latency, 99),
        "connections": 64,
        "loadavg": loadavg(),
    }


def host_speed_probe_ms() -> float:
    """The same fixed pure-Python work, timed while the stack is idle: this VM's speed at that
    moment. It varied by a third within minutes here (the same 40 s of reads cost uvicorn 18.9
    CPU-s in one run and 26.0 in the next), so each shape prints it before and after."""
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i * i % 7
    return round((time.perf_counter() - started) * 1000, 1)


async def with_host_speed(figures_coroutine) -> dict:
    before = host_speed_probe_ms()
    figures = await figures_coroutine
    figures["host_speed_probe_ms"] = {"before": before, "after": host_speed_probe_ms()}
    return figures


async def main_async(args, fixtures, stack) -> dict:
    inbox = Inbox(stack.port, fixtures["cookie"])
    await inbox.start()
    result = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": loadavg(),
            "host_speed_probe_ms_at_start": host_speed_probe_ms(),
        },
        "stack": {
            "nginx": "1 worker, generated from nginx/switchboard.conf's locations",
            "http_server": f"{args.server} × {args.workers}",
            "balance": args.balance if args.server == "uvicorn" else "round_robin",
            "webhooks_to": args.webhooks_to,
            "websockets": f"{args.ws_server} × 1",
            "worker": f"drain_webhooks × {args.drainers}, celery -Q celery-webhooks "
            f"--concurrency {1 if args.drainers else 2}",
            "pids": stack.pids,
        },
        "offered_rate": args.rate,
        "seconds_per_shape": args.seconds,
        "anchors": {},
        "shapes": {},
    }
    if not args.skip_anchors:
        log("anchor: pgbench")
        result["anchors"]["pgbench"] = await asyncio.to_thread(pgbench_anchor, args)
        log("anchor: trivial endpoint")
        result["anchors"]["trivial_endpoint"] = await trivial_anchor(args, stack)
        log(f"anchors: {json.dumps(result['anchors'])}")
    trivial = (result["anchors"].get("trivial_endpoint") or {}).get("requests_per_s")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    # Warm every server process (imports, pools, channel caches) before anything is measured.
    for kind in {"api" if s == "flood" else s for s in shapes if s != "reads"}:
        warm, _, _ = build_requests(kind, fixtures, 300, 300, stack.port, seed=3, tag=WARM_TAG)
        await asyncio.to_thread(run_generator(stack.port, warm, 150, 32))
    await asyncio.sleep(2)
    for shape in shapes:
        if shape == "reads":
            vacuum = await asyncio.to_thread(vacuum_if_autovacuum_is_off, args)
            log(f"reads: {json.dumps(vacuum)}")
            figures = await with_host_speed(run_reads(args, fixtures["reads"], stack))
            figures["before"] = vacuum
            figures["anchors"] = {
                "trivial_endpoint_per_s": trivial,
                "pgbench_insert_commits_per_s": (result["anchors"].get("pgbench") or {}).get(
                    "single_row_insert_commits_per_s"
                ),
            }
            result["shapes"][shape] = figures
            continue
        result["shapes"][shape] = await with_host_speed(
            run_shape(shape, args, fixtures, stack, inbox)
        )
    # After the open-loop shapes, so their backlogs cannot disturb those figures.
    for shape in [s for s in shapes if s in ("api", "whatsapp", "telegram")]:
        if args.skip_capacity:
            break
        capacity = await with_host_speed(
            capacity_shape(shape, args, fixtures, stack, inbox, trivial)
        )
        figures = result["shapes"][shape]
        figures["capacity"] = capacity
        if trivial:
            figures["targets_met"]["ge_50pct_of_trivial_rate"] = (
                capacity["share_of_trivial_rate"] >= 0.5
            )
    result["targets_met"] = {
        shape: all(figures["targets_met"].values()) for shape, figures in result["shapes"].items()
    }
    result["machine"]["loadavg_at_end"] = loadavg()
    inbox.task.cancel()
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        sys.exit("REDIS_URL must be set: the channel layer, the broker and the throttles need it")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prepare_database(args)
    setup_django(args)
    fixtures = make_fixtures()
    if "reads" in args.shapes.split(","):
        fixtures["reads"] = reads_fixtures(ensure_dataset(args), args)
    from django.db import connection

    connection.close()
    log("starting nginx, the servers and the worker")
    stack = Stack(args)
    try:
        result = asyncio.run(main_async(args, fixtures, stack))
    finally:
        stack.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
