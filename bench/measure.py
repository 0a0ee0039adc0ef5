"""The measurements: API latency and query counts, ingest and raw-insert throughput."""

import os
import statistics
import time
import uuid
from multiprocessing import get_context

from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from communications.api.params import encode_cursor


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _client(token: str) -> APIClient:
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _time_get(client: APIClient, url: str, params: dict, iterations: int) -> dict:
    for _ in range(3):  # warm caches and the connection pool
        response = client.get(url, params)
        assert response.status_code == 200, (url, params, response.status_code, response.content)
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        response = client.get(url, params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    body = response.json()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(_percentile(samples, 0.95), 2),
        "queries": len(queries.captured_queries),
        "rows": len(body["results"]),
    }


def conversation_list_cases(info: dict) -> tuple[str, dict, int]:
    """The list's URL, its cases (parameters by name) and the deep cursor's offset."""
    from communications.models import Conversation

    url = "/api/v1/conversations/"
    visible = info["visible_channels"]
    # A deep page: the cursor of a conversation about half-way down the manager's inbox.
    depth = info["conversations"] // 4
    anchor = (
        Conversation.objects.filter(channel_id__in=visible, is_archived=False)
        .order_by("-last_message_at", "-id")
        .values_list("last_message_at", "id")[depth]
    )
    deep = encode_cursor(*anchor)
    cases = {
        "first_page_25": {"page_size": 25},
        "first_page_100": {"page_size": 100},
        "deep_page_25": {"page_size": 25, "cursor": deep},
        "deep_page_100": {"page_size": 100, "cursor": deep},
        "status_open_25": {"page_size": 25, "status": "open"},
        "channel_25": {"page_size": 25, "channel": visible[0]},
        "channel_open_deep_100": {
            "page_size": 100,
            "channel": visible[0],
            "status": "open",
            "cursor": deep,
        },
        "unread_25": {"page_size": 25, "unread": "1"},
        "assignee_me_25": {"page_size": 25, "assignee": "me"},
        "from_to_date_100": {
            "page_size": 100,
            "from_date": anchor[0].date().isoformat(),
            "to_date": anchor[0].date().isoformat(),
        },
    }
    return url, cases, depth


def conversation_list(info: dict, iterations: int) -> dict:
    client = _client(info["manager_token"])
    url, cases, depth = conversation_list_cases(info)
    results = {name: _time_get(client, url, params, iterations) for name, params in cases.items()}
    counts = {r["queries"] for r in results.values()}
    return {
        "cases": results,
        "deep_cursor_offset": depth,
        "query_counts": sorted(counts),
        "query_count_constant": len(counts) == 1,
        "p95_max_ms": max(r["p95_ms"] for r in results.values()),
    }


def message_page_cases(info: dict) -> tuple[str, dict]:
    """The biggest thread's messages URL and its cases (parameters by name)."""
    from communications.models import Message

    thread = info["huge_threads"][0]
    url = f"/api/v1/conversations/{thread}/messages/"
    middle = (
        Message.objects.filter(conversation_id=thread)
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[info["huge_thread_size"] // 2]
    )
    oldest = (
        Message.objects.filter(conversation_id=thread)
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[info["huge_thread_size"] - 60]
    )
    cases = {
        "newest_page_50": {},
        "newest_page_200": {"page_size": 200},
        "older_page_50_middle": {"before": encode_cursor(*middle)},
        "older_page_50_oldest": {"before": encode_cursor(*oldest)},
    }
    return url, cases


def message_pages(info: dict, iterations: int) -> dict:
    from communications.models import Message

    client = _client(info["manager_token"])
    url, cases = message_page_cases(info)
    thread = info["huge_threads"][0]
    results = {name: _time_get(client, url, params, iterations) for name, params in cases.items()}
    counts = {r["queries"] for r in results.values()}
    return {
        "thread_id": thread,
        "thread_messages": Message.objects.filter(conversation_id=thread).count(),
        "cases": results,
        "query_counts": sorted(counts),
        "query_count_constant": len(counts) == 1,
        "p95_max_ms": max(r["p95_ms"] for r in results.values()),
    }


def _count(client: APIClient, url: str, params: dict) -> int:
    client.get(url, params)  # warm: the first request pays for what later ones find cached
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.status_code, response.content)
    return len(queries.captured_queries)


def query_counts(info: dict) -> dict[str, int | list[int]]:
    """Queries per request of every list, thread, search and report case the latency phase
    times (the list at 25 and 100 rows, the thread at 50 and 200, search at its default 10
    and 50), without timing: comparing the counts at two data sizes shows an N+1 (a count
    that grows with the data) that one size cannot. A search case rotates through several
    queries: its value is their count if they all cost the same, else the sorted counts."""
    from bench.reports import one_year
    from bench.search import search_cases
    from reports.selectors import REPORTS

    client = _client(info["manager_token"])
    counts: dict[str, int | list[int]] = {}
    url, cases, _ = conversation_list_cases(info)
    for name, params in cases.items():
        counts[f"list_{name}"] = _count(client, url, params)
    url, cases = message_page_cases(info)
    for name, params in cases.items():
        counts[f"thread_{name}"] = _count(client, url, params)
    for name, queries in search_cases(info).items():
        for size in (10, 50):
            found = {
                _count(client, "/api/v1/search/", {"q": q, "page_size": size}) for q in queries
            }
            counts[f"search_{name}_{size}"] = found.pop() if len(found) == 1 else sorted(found)
    for name in REPORTS:
        counts[f"report_{name}"] = _count(client, f"/api/v1/reports/{name}/", one_year())
    return counts


# --- throughput: each worker is a fresh process (Django set up there), started together ------


def _django_setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    django.setup()


class _MessageSource:
    """New messages for the throughput workers: from known customers ("existing") or each from
    a customer never seen before ("new"), always with a fresh provider id."""

    def __init__(self, mode: str, channel_ids: list[int], senders: list, tag: str, one_channel):
        import random

        from communications.models import Channel
        from crm.sample_text import CUSTOMER_LINES

        self.mode, self.tag = mode, tag
        self.channels = {c.pk: c for c in Channel.objects.filter(pk__in=channel_ids)}
        self.texts = [
            line.format(order="SB-12345", product="mug", country="Norway")
            for line in CUSTOMER_LINES
        ]
        if one_channel:
            # A batch belongs to one channel, as one webhook delivery or sync response does;
            # the concurrent webhooks of a flood come from one channel too.
            senders = [s for s in senders if s[0] == senders[0][0]]
        self.senders = senders
        self.new_channel = channel_ids[0]
        self.random = random.Random(tag)
        self.made = 0

    def next(self, count: int):
        """(channel, [InboundMessage] * count), all of one channel."""
        from communications.services.ingest import InboundMessage, InboundSender

        channel_id, items = self.senders[0][0], []
        for _ in range(count):
            self.made += 1
            if self.mode == "existing":
                channel_id, external_id = self.senders[self.random.randrange(len(self.senders))]
            else:
                channel_id, external_id = self.new_channel, f"new-{self.tag}-{self.made}"
            items.append(
                InboundMessage(
                    sender=InboundSender(external_id=external_id, name="Bench Customer"),
                    content=self.random.choice(self.texts),
                    external_id=f"bench-{self.tag}-{self.made}",
                )
            )
        return self.channels[channel_id], items


def _ingest_worker(args) -> tuple[int, float]:
    """One message per call (a webhook), or `batch` per call (a flood absorbed in batches);
    `callers` threads call at once, as concurrent webhook requests do in one server process.
    Each call gives its connection back after, as Django does at the end of a request."""
    mode, channel_ids, senders, seconds, tag, start_at, batch, callers = args
    _django_setup()
    import threading

    from communications.services.ingest import ingest_message, ingest_messages

    one_channel = batch > 1 or callers > 1
    sources = [
        _MessageSource(mode, channel_ids, senders, f"{tag}-{c}", one_channel)
        for c in range(callers)
    ]
    counts = [0] * callers

    def call_repeatedly(caller: int, started: float) -> None:
        done = 0
        while time.perf_counter() - started < seconds:
            channel, items = sources[caller].next(batch)
            if batch == 1:
                results = [ingest_message(channel, items[0])]
            else:
                results = ingest_messages(channel, items)
            connection.close()
            assert all(r.created for r in results)
            done += len(results)
        counts[caller] = done

    _wait_until(start_at)
    started = time.perf_counter()
    threads = [
        threading.Thread(target=call_repeatedly, args=(caller, started))
        for caller in range(callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    connections.close_all()
    return sum(counts), elapsed


def _flood_worker(args) -> tuple[int, float, list[float]]:
    """Single-message webhooks arriving at `rate` a second for `seconds` (an open loop: they
    keep coming whether or not the earlier ones are done), each on a thread of its own as
    daphne runs each request, the connection given back after each. Returns (messages stored,
    seconds until the last was stored, each message's latency in ms from its arrival)."""
    mode, channel_ids, senders, seconds, tag, start_at, rate = args
    _django_setup()
    import threading

    from communications.services.ingest import ingest_message

    source = _MessageSource(mode, channel_ids, senders, tag, one_channel=True)
    latencies: list[float] = []
    in_flight = threading.BoundedSemaphore(FLOOD_MAX_IN_FLIGHT)

    def handle(arrived: float, channel, item) -> None:
        try:
            result = ingest_message(channel, item)
            connection.close()
            assert result.created
            latencies.append((time.perf_counter() - arrived) * 1000)
        finally:
            in_flight.release()

    _wait_until(start_at)
    started = time.perf_counter()
    threads = []
    for n in range(int(rate * seconds)):
        arrived = started + n / rate
        delay = arrived - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        in_flight.acquire()  # a server has a limit too; waiting here counts in the latency
        channel, items = source.next(1)
        thread = threading.Thread(target=handle, args=(arrived, channel, items[0]))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    connections.close_all()
    return len(latencies), elapsed, latencies


def _raw_worker(args) -> tuple[int, float]:
    dsn, seconds, tag, start_at = args
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn, autocommit=True) as conn:
        conversation_id, channel_id = conn.execute(
            "SELECT id, channel_id FROM communications_conversation ORDER BY id DESC LIMIT 1"
        ).fetchone()
        _wait_until(start_at)
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute(
                "INSERT INTO bench_raw_message (conversation_id, channel_id, direction, kind,"
                " content, status, failure_reason, external_id, metadata, is_edited,"
                " is_deleted, created_at, updated_at, send_attempts, version)"
                " VALUES (%s, %s, 'in', 'text', %s, 'received', '', %s, %s, false, false,"
                " now(), now(), 0, 1)",
                (
                    conversation_id,
                    channel_id,
                    "where is my order SB-12345?",
                    f"raw-{tag}-{done}",
                    Jsonb({}),
                ),
            )
            done += 1
        return done, time.perf_counter() - started


def _wait_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def _in_processes(worker, jobs: list[tuple]) -> list:
    """Run the jobs in as many spawned processes (they start at the moment the jobs name);
    return what each returned."""
    with get_context("spawn").Pool(len(jobs)) as pool:
        return pool.map(worker, jobs)


def _run_parallel(worker, jobs: list[tuple]) -> dict:
    """Run (done, elapsed) jobs in parallel processes: messages, wall seconds, rate."""
    results = _in_processes(worker, jobs)
    total = sum(done for done, _ in results)
    wall = max(elapsed for _, elapsed in results)
    return {"messages": total, "seconds": round(wall, 2), "per_second": round(total / wall, 1)}


def ingest_throughput(info: dict, seconds: float, workers: list[int]) -> dict:
    senders = _bench_senders(info)
    results = {}
    run = uuid.uuid4().hex[:6]
    shapes = [
        ("", 1, 1),  # one webhook at a time
        (f"webhooks{WEBHOOK_CALLERS}_", 1, WEBHOOK_CALLERS),  # a flood of concurrent webhooks
        (f"batch{INGEST_BATCH}_", INGEST_BATCH, 1),  # batched deliveries
    ]
    for label, batch, callers in shapes:
        for mode in ("existing", "new"):
            for count in workers:
                start_at = time.time() + 8  # spawned workers need a few seconds to set up Django
                jobs = [
                    (
                        mode,
                        info["channels"],
                        senders,
                        seconds,
                        f"{run}-{mode}-{batch}-{callers}-{count}-{i}",
                        start_at,
                        batch,
                        callers,
                    )
                    for i in range(count)
                ]
                results[f"{label}{mode}_conversations_{count}_proc"] = _run_parallel(
                    _ingest_worker, jobs
                )
    return results


def flood_throughput(info: dict, seconds: float, workers: int, rates: list[int]) -> dict:
    """Open-loop floods of single-message webhooks at each total rate, over `workers`
    processes: what was stored per second, and how long each message took from arrival."""
    senders = _bench_senders(info)
    results = {}
    run = uuid.uuid4().hex[:6]
    for phase, (mode, rate) in enumerate((m, r) for m in ("existing", "new") for r in rates):
        start_at = time.time() + 8
        jobs = [
            (
                mode,
                info["channels"],
                senders,
                seconds,
                f"{run}-flood{phase}-{mode}-{rate}-{i}",
                start_at,
                rate / workers,
            )
            for i in range(workers)
        ]
        outcomes = _in_processes(_flood_worker, jobs)
        stored = sum(done for done, _, _ in outcomes)
        wall = max(elapsed for _, elapsed, _ in outcomes)
        latencies = [ms for _, _, worker_latencies in outcomes for ms in worker_latencies]
        per_second = stored / wall
        latencies = latencies or [float("nan")]  # nothing stored: the JSON says so
        results[f"flood_{mode}_conversations_{rate}_per_s_{workers}_proc"] = {
            "offered_per_second": rate,
            "messages": stored,
            "seconds": round(wall, 2),
            "per_second": round(per_second, 1),
            "kept_up": per_second >= 0.95 * rate,
            "latency_p50_ms": round(_percentile(latencies, 0.50), 1),
            "latency_p95_ms": round(_percentile(latencies, 0.95), 1),
            "latency_p99_ms": round(_percentile(latencies, 0.99), 1),
        }
    return results


def _bench_senders(info: dict) -> list:
    from communications.models import ContactIdentity

    return list(
        ContactIdentity.objects.filter(channel_id__in=info["channels"])
        .exclude(contact_id__in=info["huge_threads"])
        .order_by("?")
        .values_list("channel_id", "external_id")[:20_000]
    )


# Requests one server process works on at once in the flood (beyond, arrivals wait).
FLOOD_MAX_IN_FLIGHT = 500
# Messages per ingest call in the flood measurement (a webhook delivery or a sync response).
INGEST_BATCH = 100
# Concurrent single-message webhook requests per server process in the flood measurement.
WEBHOOK_CALLERS = 16


def raw_insert_throughput(dsn: str, seconds: float, workers: list[int]) -> dict:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_message")
        # Same columns, defaults and indexes as the message table (foreign keys aside).
        conn.execute("CREATE TABLE bench_raw_message (LIKE communications_message INCLUDING ALL)")
    results = {}
    run = uuid.uuid4().hex[:6]
    for count in workers:
        start_at = time.time() + 2
        jobs = [(dsn, seconds, f"{run}-{count}-{i}", start_at) for i in range(count)]
        results[f"raw_insert_{count}_proc"] = _run_parallel(_raw_worker, jobs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_raw_message")
    return results
