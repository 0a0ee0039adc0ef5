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


def conversation_list(info: dict, iterations: int) -> dict:
    from communications.models import Conversation

    client = _client(info["manager_token"])
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
    results = {name: _time_get(client, url, params, iterations) for name, params in cases.items()}
    counts = {r["queries"] for r in results.values()}
    return {
        "cases": results,
        "deep_cursor_offset": depth,
        "query_counts": sorted(counts),
        "query_count_constant": len(counts) == 1,
        "p95_max_ms": max(r["p95_ms"] for r in results.values()),
    }


def message_pages(info: dict, iterations: int) -> dict:
    from communications.models import Message

    client = _client(info["manager_token"])
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


# --- throughput: each worker is a fresh process (Django set up there), started together ------


def _django_setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    django.setup()


def _ingest_worker(args) -> tuple[int, float]:
    """One message per call (a webhook), or `batch` per call (a flood absorbed in batches);
    `callers` threads call at once, as concurrent webhook requests do in one server process."""
    mode, channel_ids, senders, seconds, tag, start_at, batch, callers = args
    _django_setup()
    import random
    import threading

    from communications.models import Channel
    from communications.services.ingest import (
        InboundMessage,
        InboundSender,
        ingest_message,
        ingest_messages,
    )
    from crm.sample_text import CUSTOMER_LINES

    channels = {c.pk: c for c in Channel.objects.filter(pk__in=channel_ids)}
    texts = [
        line.format(order="SB-12345", product="mug", country="Norway") for line in CUSTOMER_LINES
    ]
    if batch > 1 or callers > 1:
        # A batch belongs to one channel, as one webhook delivery or sync response does; the
        # concurrent webhooks of a flood come from one channel too.
        senders = [s for s in senders if s[0] == senders[0][0]]
    counts = [0] * callers

    def call_repeatedly(caller: int, started: float) -> None:
        rng = random.Random(f"{tag}-{caller}")
        channel_id = senders[0][0] if mode == "existing" else channel_ids[0]
        done = 0
        while time.perf_counter() - started < seconds:
            items = []
            for _ in range(batch):
                if mode == "existing":
                    channel_id, external_id = senders[rng.randrange(len(senders))]
                else:
                    external_id = f"new-{tag}-{caller}-{done + len(items)}"
                items.append(
                    InboundMessage(
                        sender=InboundSender(external_id=external_id, name="Bench Customer"),
                        content=rng.choice(texts),
                        external_id=f"bench-{tag}-{caller}-{done + len(items)}",
                    )
                )
            if batch == 1:
                results = [ingest_message(channels[channel_id], items[0])]
            else:
                results = ingest_messages(channels[channel_id], items)
            assert all(r.created for r in results)
            done += len(results)
        counts[caller] = done
        connections.close_all()

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
                " is_deleted, created_at, updated_at, send_attempts)"
                " VALUES (%s, %s, 'in', 'text', %s, 'received', '', %s, %s, false, false,"
                " now(), now(), 0)",
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


def _run_parallel(worker, jobs: list[tuple]) -> dict:
    """Run the jobs in as many spawned processes, all starting at the same moment."""
    context = get_context("spawn")
    with context.Pool(len(jobs)) as pool:
        results = pool.map(worker, jobs)
    total = sum(done for done, _ in results)
    wall = max(elapsed for _, elapsed in results)
    return {"messages": total, "seconds": round(wall, 2), "per_second": round(total / wall, 1)}


def ingest_throughput(info: dict, seconds: float, workers: list[int]) -> dict:
    from communications.models import ContactIdentity

    senders = list(
        ContactIdentity.objects.filter(channel_id__in=info["channels"])
        .exclude(contact_id__in=info["huge_threads"])
        .order_by("?")
        .values_list("channel_id", "external_id")[:20_000]
    )
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
