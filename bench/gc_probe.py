"""In-process probe of the garbage collector's share of API requests (crm/gc_tuning.py).

Not a user-path figure (that is `bench/realpath.py --shapes reads`, run with GC_THRESHOLD set
per arm): this isolates the collector. Each arm runs in a fresh interpreter, arms alternate
(`--rounds` times each), and each prints its request times and every collection's pause
(gc.callbacks), so the two can be told apart from the machine's own drift.

    .venv/bin/python bench/gc_probe.py [--requests 800] [--rounds 2]

Needs the benchmark dataset of bench/realpath.py (`switchboard_realpath`, 100k conversations,
2M messages) and its settings; prints JSON.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"python": "CPython's collector (700,10,10, nothing frozen)", "tuned": "GC_THRESHOLD"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/switchboard_realpath"
    )
    parser.add_argument("--tuned", default="10000,10,10", help="GC_THRESHOLD of the tuned arm")
    parser.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)  # one child run
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.requests)))
        return
    runs = []
    for _ in range(args.rounds):
        for arm in ARMS:
            env = dict(
                os.environ,
                GC_THRESHOLD="python" if arm == "python" else args.tuned,
                DATABASE_URL=args.database_url,
                DJANGO_SECRET_KEY="realpath-" + "k" * 40,
                FIELD_ENCRYPTION_KEYS="realpath-" + "k" * 40,
                DJANGO_DEBUG="0",
            )
            out = subprocess.run(
                [sys.executable, __file__, "--arm", arm, "--requests", str(args.requests)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append({"arm": arm, **json.loads(out.stdout.strip().splitlines()[-1])})
    print(json.dumps({"in_process": True, "tuned": args.tuned, "runs": runs}, indent=1))


def run_arm(count: int) -> dict:
    import gc
    import time

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from django.db import connection
    from django.test import Client

    import crm.asgi  # noqa: F401 - start-up as the web process does it (and its gc tuning)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id"
            " WHERE NOT u.is_superuser ORDER BY u.id LIMIT 1"
        )
        key = cursor.fetchone()[0]
        cursor.execute(
            "SELECT conversation_id FROM communications_message"
            " GROUP BY conversation_id ORDER BY count(*) DESC LIMIT 1"
        )
        huge = cursor.fetchone()[0]
    pauses: list[tuple[int, float]] = []
    started = {}

    def timed(phase, info):
        if phase == "start":
            started["at"] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started["at"]) * 1000))

    client = Client(
        HTTP_AUTHORIZATION=f"Token {key}", HTTP_X_FORWARDED_PROTO="https", SERVER_NAME="127.0.0.1"
    )
    urls = [
        "/api/v1/conversations/?page_size=25",
        "/api/v1/conversations/?page_size=100",
        f"/api/v1/conversations/{huge}/messages/?page_size=50",
        f"/api/v1/conversations/{huge}/messages/?page_size=200",
    ]
    warm = 100
    times = []
    for n in range(count + warm):
        if n == warm:
            gc.callbacks.append(timed)
        began = time.perf_counter()
        response = client.get(urls[n % len(urls)])
        if response.status_code != 200:
            raise SystemExit(f"{urls[n % len(urls)]} answered {response.status_code}")
        if n >= warm:
            times.append((time.perf_counter() - began) * 1000)
    times.sort()

    def at(p):
        return round(times[min(len(times) - 1, int(len(times) * p / 100))], 1)

    return {
        "threshold": list(gc.get_threshold()),
        "frozen_objects": gc.get_freeze_count(),
        "requests": len(times),
        "ms": {"p50": at(50), "p95": at(95), "p99": at(99), "max": round(times[-1], 1)},
        "collections": {
            f"gen{g}": {
                "count": sum(1 for gen, _ in pauses if gen == g),
                "total_ms": round(sum(ms for gen, ms in pauses if gen == g), 1),
                "max_ms": round(max([ms for gen, ms in pauses if gen == g], default=0), 1),
            }
            for g in (0, 1, 2)
        },
    }


if __name__ == "__main__":
    main()
