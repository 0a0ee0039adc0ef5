#!/usr/bin/env python
"""Search benchmark: GET /api/v1/search/ through HTTP (daphne, PostgreSQL), printed as JSON.

    .venv/bin/python bench/search.py                  # 100k messages (5k conversations)
    .venv/bin/python bench/search.py --large          # 2M messages (100k conversations)
    .venv/bin/python bench/search.py --reuse          # measure an already loaded database

Loads bench/dataset.py's inbox into its own database (`switchboard_bench_search_<size>` on
postgres://postgres@127.0.0.1:5432, or --database-url), starts one daphne process on it and
times searches as the bench manager (half of the channels visible): one word, two words, a
phone number in another formatting, a partial name; p50/p95 of each, the query plan of each
message search, and same-run anchors — a trivial API call (an unknown contact: token check
and one query) and a raw `SELECT 1` — so a figure can be read against the machine's load.

`--ingest-seconds` also measures what the search vector costs ingest: the in-process batched
ingest rate (ingest_messages, 100 per batch, one process) with the trigger, then without it
(DISABLE TRIGGER), alternating, same run. Progress on stderr, JSON on stdout.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--large", action="store_true", help="2,000,000 messages")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--reuse", action="store_true", help="measure an already loaded db")
    parser.add_argument("--iterations", type=int, default=40, help="requests per case")
    parser.add_argument("--ingest-seconds", type=float, default=3.0, help="0 to skip")
    return parser.parse_args(argv)


def prepare_database(args) -> tuple[str, bool]:
    import psycopg

    name = f"switchboard_bench_search_{args.messages}"
    url = args.database_url or f"{SERVER}/{name}"
    if not args.database_url:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone():
                if args.reuse:
                    return url, False
                log(f"dropping database {name}")
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    return url, not args.reuse


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(call, iterations: int) -> dict:
    call()  # warm: connection, plan cache
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "max_ms": round(max(samples), 2),
        "n": iterations,
    }


def search_cases(info: dict) -> dict[str, list[str]]:
    """Queries per case, rotated through so one cached answer does not stand for all."""
    from crm.models import Contact

    sample = list(
        Contact.objects.filter(conversations__channel_id__in=info["visible_channels"])
        .order_by("id")
        .values_list("name", "phone")[:400:40]
    )

    def spaced(phone: str) -> str:  # "+4915100001234" → "+49 151 0000 1234": another format
        digits = phone.lstrip("+")
        return f"+{digits[:2]} {digits[2:5]} {digits[5:9]} {digits[9:]}"

    return {
        "one_word": ["refunded", "courier", "tracking", "discount", "broken", "warehouse"],
        "two_words": [
            "delivery address",
            "charged twice",
            "confirmation email",
            "duplicate charge",
            "tracking link",
            "pick store",
        ],
        "phone": [spaced(phone) for _, phone in sample],
        "name": [name.split()[-1][:5] for name, _ in sample],
    }


def main(argv=None) -> int:
    # Run as a script, this folder comes first on the path: the project root must instead.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.large:
        args.messages = 2_000_000
    conversations = max(100, args.messages // 20)
    url, needs_load = prepare_database(args)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "localhost,127.0.0.1"
    # Fixed keys for the throwaway bench database, so --reuse can read its channels' secrets.
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-search-throwaway-" + "k" * 40)
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "bench-search-throwaway-" + "e" * 40)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django

    django.setup()
    import httpx
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    from bench import dataset
    from bench.realtime import Server

    started = time.monotonic()
    if needs_load:
        log(f"migrating {url}")
        call_command("migrate", verbosity=0)
        log(f"loading {conversations:,} conversations / {args.messages:,} messages")
        info = dataset.load(conversations, args.messages, log=log)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_meta (info text)")
            cursor.execute("INSERT INTO bench_meta VALUES (%s)", [json.dumps(info)])
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT info FROM bench_meta")
            info = json.loads(cursor.fetchone()[0])
    cases = search_cases(info)
    plans = explain(info, cases)
    connection.close()

    log("starting daphne")
    server = Server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        headers = {"Authorization": f"Token {info['manager_token']}"}
        latency = {}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for name, queries in cases.items():
                log(f"timing {name} searches")
                rotation = iter(range(10**9))

                def call(queries=queries, rotation=rotation):
                    q = queries[next(rotation) % len(queries)]
                    response = client.get("/api/v1/search/", params={"q": q})
                    assert response.status_code == 200, response.text[:300]

                latency[name] = timed(call, args.iterations)
                latency[name]["queries"] = queries
            log("timing the anchors")

            def trivial():
                assert client.get("/api/v1/contacts/999999999/").status_code == 404

            anchors = {"trivial_api_call": timed(trivial, args.iterations)}
        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as raw:
            anchors["raw_select_1"] = timed(lambda: raw.execute("SELECT 1").fetchone(), 200)
    finally:
        server.stop()

    ingest = measure_ingest_cost(info, args.ingest_seconds) if args.ingest_seconds else {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('shared_buffers')")
        pg_version, shared_buffers = cursor.fetchone()
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('msg_search_vector'))")
        index_size = cursor.fetchone()[0]
    document = {
        "dataset": {
            "messages": info["messages"],
            "conversations": info["conversations"],
            "visible_channels_of_manager": len(info["visible_channels"]),
            "search_vector_fill_seconds": info.get("search_vector_fill_seconds"),
            "gin_index_size": index_size,
        },
        "environment": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "postgresql": pg_version.split(" on ")[0],
            "shared_buffers": shared_buffers,
            "server": "daphne, 1 process, HTTP/1.1 keep-alive",
        },
        "search_http": latency,
        "anchors": anchors,
        "ingest_cost_of_search_vector": ingest,
        "query_plans": plans,
        "bench_seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(document, indent=2, default=str))
    return 0


def explain(info: dict, cases: dict) -> dict:
    """EXPLAIN ANALYZE of each query of one search per case (all groups), as the manager
    runs it: the plan of the message query, the execution time of every query."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from communications.search import search

    manager = get_user_model().objects.get(username="bench-manager")
    plans = {}
    for name, queries in cases.items():
        with CaptureQueriesContext(connection) as captured:
            search(manager, {"q": queries[0]})
        case = {}
        # the last three queries of a search, in this order (communications/search.py)
        groups = ("conversations", "messages", "contacts")
        for group, query in zip(groups, captured.captured_queries[-3:], strict=True):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query["sql"])
                lines = [row[0] for row in cursor.fetchall()]
            case[f"{group}_execution"] = lines[-1]
            case[f"{group}_plan"] = lines
        plans[f"{name}: {queries[0]}"] = case
    return plans


def measure_ingest_cost(info: dict, seconds: float) -> dict:
    """Batched ingest (100 per call, one process) with and without the search trigger,
    alternating four times so drift on a shared machine hits both alike; medians."""
    from django.db import connection

    from bench.measure import _bench_senders, _MessageSource
    from communications.services.ingest import ingest_messages

    senders = _bench_senders(info)
    source = _MessageSource("existing", info["channels"], senders, "vec", True)
    rates: dict[str, list[float]] = {"with_vector": [], "without_vector": []}

    def run(label: str) -> None:
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            channel, items = source.next(100)
            done += len(ingest_messages(channel, items))
        rates[label].append(done / (time.perf_counter() - started))

    try:
        for _ in range(4):
            log("ingest with the search vector")
            run("with_vector")
            with connection.cursor() as cursor:
                cursor.execute(
                    "ALTER TABLE communications_message DISABLE TRIGGER message_search_vector"
                )
            log("ingest without it")
            run("without_vector")
            with connection.cursor() as cursor:
                cursor.execute(
                    "ALTER TABLE communications_message ENABLE TRIGGER message_search_vector"
                )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE communications_message ENABLE TRIGGER message_search_vector"
            )
            # the rows written without the trigger get their vectors, as any backfill would
            from communications.search_index import refill_postgresql

            refill_postgresql(cursor, batch=50_000)
    with_vector = statistics.median(rates["with_vector"])
    without = statistics.median(rates["without_vector"])
    return {
        "method": "in-process ingest_messages, 100 per batch, existing conversations, "
        f"{seconds:g} s phases alternating four times, medians",
        "with_vector_per_second": round(with_vector),
        "without_vector_per_second": round(without),
        "cost_percent": round(100 * (1 - with_vector / without), 1),
        "phases": {k: [round(v) for v in vs] for k, vs in rates.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
