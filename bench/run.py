#!/usr/bin/env python
"""Switchboard benchmark: load a realistic inbox into PostgreSQL, measure, print JSON.

    .venv/bin/python bench/run.py                                   # 100k conversations, 2M messages
    .venv/bin/python bench/run.py --conversations 2000 --messages 40000   # quick check

Without DATABASE_URL it (re)creates the database `switchboard_bench` on
postgres://postgres@127.0.0.1:5432, runs the migrations and loads the data with COPY.
`--reuse` keeps an already loaded bench database (same sizes) and only measures.
Query counts are compared at two data sizes (`--sizes`, by default a tenth of
--conversations and --conversations): each smaller size is loaded by the same generator, with
messages in proportion, into a database of its own (the main one's name + `_<size>`), where
only the counts are taken (no timing), before the main run.
The channel layer is whatever REDIS_URL says (unset: in-memory), as in production settings.
The latencies above are in process (through the API views, not HTTP). What users get is
measured after them by `bench/realpath.py` (nginx, the app servers, drainer, websockets; its
own database), run as a child process unless `--skip-realpath` (`--realpath-args` passes it
arguments): its document goes under `real_path`, and the list/thread and webhook targets in
`targets_met` are the real-path figures (the in-process ones are kept as `in_process_…`).
Progress goes to stderr, the JSON document to stdout.
"""

import argparse
import json
import os
import platform
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DB = "switchboard_bench"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--reuse", action="store_true", help="measure an already loaded db")
    parser.add_argument("--iterations", type=int, default=0, help="requests per latency case")
    parser.add_argument("--ingest-seconds", type=float, default=0, help="per throughput phase")
    parser.add_argument("--workers", default="1,2,4", help="process counts for throughput")
    parser.add_argument(
        "--flood-rates", default="1000,1500,2500", help="offered single-message webhooks/s (total)"
    )
    parser.add_argument("--flood-workers", type=int, default=2, help="processes in the flood")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--sizes",
        default="",
        help="conversation counts at which query counts are compared "
        "(default: a tenth of --conversations, and --conversations)",
    )
    parser.add_argument(
        "--counts-only",
        action="store_true",
        help="load (or --reuse) and print only the query counts (the smaller sizes' runs)",
    )
    parser.add_argument(
        "--skip-realpath", action="store_true", help="skip bench/realpath.py (needs REDIS_URL)"
    )
    parser.add_argument(
        "--realpath-args", default="", help="arguments for bench/realpath.py, e.g. '--seconds 60'"
    )
    args = parser.parse_args(argv)
    extra = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes:
        extra = [max(1, args.conversations // 10)]
    args.sizes = sorted(set(extra) | {args.conversations})
    return args


def run_realpath(args) -> dict:
    """bench/realpath.py in a child process (it starts its own servers and database)."""
    import shlex
    import subprocess

    if not os.environ.get("REDIS_URL"):
        return {"skipped": "REDIS_URL is not set: the real stack needs Redis"}
    command = [
        sys.executable,
        str(ROOT / "bench" / "realpath.py"),
        *shlex.split(args.realpath_args),
    ]
    log(f"real path: {' '.join(command)}")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=ROOT)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"failed": f"bench/realpath.py exited {done.returncode} without a JSON document"}


def size_label(conversations: int) -> str:
    """10000 → "10k": the key of a size in query_counts_by_size."""
    return f"{conversations // 1000}k" if conversations % 1000 == 0 else str(conversations)


def page_size_differences(counts: dict) -> list[str]:
    """The requests whose count moves with the page size: every list case (25 or 100 rows)
    costs the same, every thread case (50 or 200), each search case at 10 and at 50."""

    def group(case: str) -> str:
        if case.startswith(("list_", "thread_")):
            return case.split("_", 1)[0]
        return case.rsplit("_", 1)[0] if case.startswith("search_") else case

    groups: dict[str, set] = {}
    for case, count in counts.items():
        groups.setdefault(group(case), set()).add(json.dumps(count))
    return sorted(name for name, found in groups.items() if len(found) > 1)


def counts_at_size(args, size: int) -> dict:
    """Load `size` conversations (messages in proportion) into a database of their own in a
    child process (`--counts-only`), and return the query counts it prints."""
    import subprocess
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    main = urlsplit(args.database_url or f"{DEFAULT_SERVER}/{DEFAULT_DB}")
    name = f"{main.path.lstrip('/')}_{size}"
    url = urlunsplit(main._replace(path=f"/{name}"))
    with psycopg.connect(
        _dsn(urlunsplit(main._replace(path="/postgres"))), autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not args.reuse:
            log(f"dropping database {name}")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    messages = round(args.messages * size / args.conversations)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--counts-only",
        f"--conversations={size}",
        f"--messages={messages}",
        f"--database-url={url}",
        f"--seed={args.seed}",
    ] + (["--reuse"] if args.reuse else [])
    log(f"query counts at {size:,} conversations / {messages:,} messages in {name}")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout)


def prepare_database(args) -> tuple[str, bool]:
    """Return (url, needs_load)."""
    import psycopg

    url = args.database_url or f"{DEFAULT_SERVER}/{DEFAULT_DB}"
    if not args.database_url:
        with psycopg.connect(f"{DEFAULT_SERVER}/postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DEFAULT_DB,)
            ).fetchone()
            if exists and not args.reuse:
                log(f"dropping database {DEFAULT_DB}")
                conn.execute(f"DROP DATABASE {DEFAULT_DB} WITH (FORCE)")
                exists = None
            if not exists:
                conn.execute(f"CREATE DATABASE {DEFAULT_DB}")
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        meta = conn.execute("SELECT to_regclass('bench_meta')").fetchone()[0]
        if meta:
            saved = json.loads(conn.execute("SELECT info FROM bench_meta").fetchone()[0])
            same = saved["requested"] == [args.conversations, args.messages]
            if args.reuse and same:
                return url, False
            raise SystemExit(
                f"{url} already holds a bench dataset of {saved['requested']}; "
                "use --reuse with the same sizes, or an empty database"
            )
        has_data = conn.execute("SELECT to_regclass('communications_message')").fetchone()[0]
        if has_data and conn.execute("SELECT 1 FROM communications_message LIMIT 1").fetchone():
            raise SystemExit(f"{url} already has messages; the bench wants an empty database")
    return url, True


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def main(argv=None) -> int:
    # Run as a script, this folder comes first on the path: the project root must instead.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    args = parse_args(argv if argv is not None else sys.argv[1:])
    small = args.messages < 500_000
    iterations = args.iterations or (40 if small else 100)
    seconds = args.ingest_seconds or (3.0 if small else 10.0)
    workers = [int(w) for w in args.workers.split(",") if w]
    url, needs_load = prepare_database(args)
    # The other sizes first, each in its own process and database: only their query counts.
    others = {}
    if not args.counts_only:
        for size in args.sizes:
            if size != args.conversations:
                others[size] = counts_at_size(args, size)
    os.environ["DATABASE_URL"] = url
    # Production-like settings: no DEBUG query log; the test client talks plain HTTP.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "localhost"
    # Production settings refuse the built-in keys; the benchmark's database is throwaway.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", secrets.token_urlsafe(48))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bench import dataset, measure
    from bench import reports as bench_reports

    started = time.monotonic()
    if needs_load:
        log(f"migrating {url}")
        call_command("migrate", verbosity=0)
        log(f"loading {args.conversations:,} conversations / {args.messages:,} messages")
        info = dataset.load(args.conversations, args.messages, seed=args.seed, log=log)
        info["requested"] = [args.conversations, args.messages]
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_meta (info text)")
            cursor.execute("INSERT INTO bench_meta VALUES (%s)", [json.dumps(info)])
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT info FROM bench_meta")
            info = json.loads(cursor.fetchone()[0])
        log("reusing the loaded dataset")

    log("preparing the reports' rollups")
    rollups = bench_reports.prepare(log)
    if args.counts_only:
        log("counting the queries of every case")
        keys = ("conversations", "messages", "huge_thread_size")
        counts = measure.query_counts(info)
        print(json.dumps({"dataset": {k: info[k] for k in keys}, "query_counts": counts}))
        return 0
    log("measuring one-year reports")
    report_latency = bench_reports.measure(info, iterations)
    log("measuring message search")
    search_latency = measure_search(info, iterations)
    log("measuring the conversation list")
    conversation_list = measure.conversation_list(info, iterations)
    log("measuring message pages")
    message_pages = measure.message_pages(info, iterations)
    throughput = {}
    if not args.skip_throughput:
        log(f"measuring raw INSERT throughput ({seconds:g} s per phase)")
        raw = measure.raw_insert_throughput(_dsn(url), seconds, workers)
        log(f"measuring ingest throughput ({seconds:g} s per phase)")
        ingest = measure.ingest_throughput(info, seconds, workers)
        rates = [int(r) for r in args.flood_rates.split(",") if r]
        log(f"measuring floods of single-message webhooks at {rates} per second")
        flood = measure.flood_throughput(info, seconds, args.flood_workers, rates)
        raw_for_flood = raw.get(f"raw_insert_{args.flood_workers}_proc", {}).get("per_second")
        flood_capacity = max((r["per_second"] for r in flood.values()), default=0)
        best_ingest = max(r["per_second"] for r in ingest.values())
        raw_single = raw["raw_insert_1_proc"]["per_second"] if 1 in workers else None

        def ratios(label: str) -> dict:
            """Ingest into existing conversations over raw INSERT, per process count."""
            return {
                str(w): round(
                    ingest[f"{label}existing_conversations_{w}_proc"]["per_second"]
                    / raw[f"raw_insert_{w}_proc"]["per_second"],
                    3,
                )
                for w in workers
            }

        throughput = {
            "ingest": ingest,
            "raw_insert": raw,
            "best_ingest_per_second": best_ingest,
            "ingest_single_vs_raw_single": (
                round(ingest["existing_conversations_1_proc"]["per_second"] / raw_single, 3)
                if raw_single
                else None
            ),
            "ratio_by_workers": ratios(""),
            # A flood of single-message webhooks: concurrent requests share batches.
            "webhook_flood_ratio_by_workers": ratios(f"webhooks{measure.WEBHOOK_CALLERS}_"),
            # Floods reach the ingest path in batches (one webhook delivery / sync response).
            "batch_ratio_by_workers": ratios(f"batch{measure.INGEST_BATCH}_"),
            # Single-message webhooks arriving at a rate (open loop), over flood_workers
            # processes. Capacity: the most stored per second under any offered rate (past
            # the sustained rate the backlog, and so the latency, grows). Sustained: the
            # highest offered rate that was kept up with.
            "flood": flood,
            "flood_capacity_per_second": flood_capacity,
            "flood_capacity_ratio_to_raw": (
                round(flood_capacity / raw_for_flood, 3) if raw_for_flood else None
            ),
            "flood_sustained_offered_per_second": max(
                (r["offered_per_second"] for r in flood.values() if r["kept_up"]), default=0
            ),
        }

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version(), current_setting('shared_buffers'),"
            " current_setting('synchronous_commit')"
        )
        pg_version, shared_buffers, sync_commit = cursor.fetchone()
    log("counting the queries of every case")
    by_size = {size: r["query_counts"] for size, r in others.items()}
    by_size[args.conversations] = measure.query_counts(info)
    query_counts_by_size = {size_label(size): by_size[size] for size in sorted(by_size)}
    differ = sorted(
        case
        for case in set().union(*by_size.values())
        if len({json.dumps(counts.get(case)) for counts in by_size.values()}) > 1
    )
    targets = {
        "in_process_list_p95_le_25ms": conversation_list["p95_max_ms"] <= 25,
        "in_process_thread_p95_le_25ms": message_pages["p95_max_ms"] <= 25,
        "list_query_count_constant": conversation_list["query_count_constant"],
        "thread_query_count_constant": message_pages["query_count_constant"],
    }
    by_page_size = {
        size_label(size): page_size_differences(counts) for size, counts in sorted(by_size.items())
    }
    if len(by_size) > 1:
        # Every list, thread, search and report case costs the same number of queries at every
        # data size, and each page's count does not move with the page size either.
        same = not differ and not any(by_page_size.values())
        targets[f"query_counts_same_at_{'_and_'.join(query_counts_by_size)}"] = same
    targets["report_one_year_p95_le_300ms"] = report_latency["one_year_report_p95_max_ms"] <= 300
    for case in ("one_word", "two_words", "phone"):
        targets[f"search_{case}_p95_le_100ms"] = search_latency["latency"][case]["p95_ms"] <= 100
    if throughput:
        best_ratio = max(
            *throughput["ratio_by_workers"].values(),
            *throughput["webhook_flood_ratio_by_workers"].values(),
            *throughput["batch_ratio_by_workers"].values(),
        )
        targets["ingest_ge_1000_per_s"] = throughput["best_ingest_per_second"] >= 1000
        targets["ingest_ge_third_of_raw"] = best_ratio >= 1 / 3
        # The same two targets for single-message webhooks only (no batched deliveries).
        targets["single_message_flood_ge_1000_per_s"] = (
            throughput["flood_capacity_per_second"] >= 1000
        )
        targets["single_message_flood_ge_third_of_raw"] = (
            throughput["flood_capacity_ratio_to_raw"] or 0
        ) >= 1 / 3
    real_path = {"skipped": "--skip-realpath"} if args.skip_realpath else run_realpath(args)
    for shape, figures in (real_path.get("shapes") or {}).items():
        for target, met in (figures.get("targets_met") or {}).items():
            targets[target if shape == "reads" else f"{shape}_{target}"] = met
    if "shapes" not in real_path:
        targets["real_path_measured"] = False
    document = {
        "dataset": {
            k: info[k]
            for k in (
                "conversations",
                "messages",
                "huge_thread_size",
                "load_seconds",
                "vacuum_analyze_seconds",
            )
        }
        | {"huge_threads": len(info["huge_threads"])},
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": pg_version.split(" on ")[0],
            "shared_buffers": shared_buffers,
            "synchronous_commit": sync_commit,
            "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
            "iterations_per_case": iterations,
        },
        "conversation_list": conversation_list,
        "message_page": message_pages,
        "query_counts_by_size": query_counts_by_size,
        "query_counts_differing_by_size": differ,
        "query_counts_differing_by_page_size": by_page_size,
        "query_count_datasets": {
            size_label(size): r["dataset"] for size, r in sorted(others.items())
        },
        "throughput": throughput,
        "reports": {"rollups": rollups, **report_latency},
        "search": search_latency,
        "real_path": real_path,
        "targets_met": targets,
        "bench_seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(document, indent=2, default=str))
    return 0


def measure_search(info: dict, iterations: int) -> dict:
    """GET /api/v1/search/ in process as the bench manager: one word, two words, a phone in
    another formatting, a partial name — bench/search.py's cases, timing and plans."""
    from bench.measure import _client
    from bench.search import explain, search_cases, timed

    cases = search_cases(info)
    client = _client(info["manager_token"])
    latency = {}
    for name, queries in cases.items():
        rotation = iter(range(10**9))

        def call(queries=queries, rotation=rotation):
            q = queries[next(rotation) % len(queries)]
            response = client.get("/api/v1/search/", {"q": q})
            assert response.status_code == 200, response.content[:300]

        latency[name] = timed(call, iterations) | {"queries": queries}
    return {"latency": latency, "query_plans": explain(info, cases)}


if __name__ == "__main__":
    sys.exit(main())
