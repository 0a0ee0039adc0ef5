"""Reports on the bench dataset (bench/dataset.py): the rollups built once (timed), then every
report over one year through the API view, p50/p95, its query count and the rollup query's
plan. Called from bench/run.py.

The dataset is written by COPY with no activity log, so `prepare` first adds the line the
inbox writes when a conversation is resolved ("status → resolved", by its assignee, ten
minutes after its last message) for each resolved conversation — the resolved counts and
resolution times then have something to count. The bench manager is given the reports
permission (through a "Team leads" group), so the timings include its check."""

import time
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from reports.selectors import MAX_DAYS, REPORTS

RESOLVES = """
INSERT INTO communications_activity
    (conversation_id, actor_id, actor_name, verb, subject_type, subject_id, subject_repr,
     before, after, created_at)
SELECT c.id, c.assignee_id, '', 'status', 'conversation', c.id, 'conversation #' || c.id,
       '{"status": "open"}', '{"status": "resolved"}', c.last_message_at + interval '10 minutes'
FROM communications_conversation c
WHERE c.status = 'resolved'
  AND NOT EXISTS (SELECT 1 FROM communications_activity a WHERE a.conversation_id = c.id
                  AND a.verb = 'status')
"""


def prepare(log) -> dict:
    """Resolution lines, the permission, and the rollups of the dataset's whole span (once)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from bench.dataset import MANAGER
    from communications.models import Conversation
    from reports.models import DailyRollup
    from reports.rollups import local_today, local_zone, rebuild_rollups

    leads, _ = Group.objects.get_or_create(name="Team leads")
    leads.permissions.add(Permission.objects.get(codename="view_reports"))
    leads.user_set.add(get_user_model().objects.get(username=MANAGER))
    if DailyRollup.objects.exists():
        log("rollups already built")
        return {}
    with connection.cursor() as cursor:
        cursor.execute(RESOLVES)
        resolves = cursor.rowcount
    oldest = Conversation.objects.order_by("created_at").values_list("created_at", flat=True)[0]
    first, last = oldest.astimezone(local_zone()).date(), local_today()
    log(f"building the report rollups {first}..{last} ({resolves:,} resolution lines added)")
    started = time.monotonic()
    totals = rebuild_rollups(first, last)
    seconds = round(time.monotonic() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reports_dailyrollup")
        cursor.execute("ANALYZE reports_dailymanagerrollup")
    log(f"  {totals['rows']:,} rows, {totals['manager_rows']:,} manager rows in {seconds} s")
    return {"rebuild_seconds": seconds, "resolution_lines_added": resolves, **totals}


def one_year() -> dict:
    from reports.rollups import local_today

    last = local_today()
    return {
        "from_date": (last - timedelta(days=MAX_DAYS - 1)).isoformat(),
        "to_date": last.isoformat(),
    }


def measure(info: dict, iterations: int) -> dict:
    """Each report over the longest range allowed (366 days, covering the whole dataset)
    through GET /api/v1/reports/<name>/ in process, as the bench manager (a team lead)."""
    from bench.measure import _client
    from bench.search import timed

    client = _client(info["manager_token"])
    params = one_year()
    results, plans = {}, {}
    for name in REPORTS:
        url = f"/api/v1/reports/{name}/"

        def call(url=url):
            response = client.get(url, params)
            assert response.status_code == 200, (url, response.status_code, response.content)

        results[name] = timed(call, iterations)
        with CaptureQueriesContext(connection) as captured:
            call()
        results[name]["queries"] = len(captured.captured_queries)
        rollup_query = captured.captured_queries[-1]["sql"]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + rollup_query)
            plans[name] = [row[0] for row in cursor.fetchall()]
    slowest = max(r["p95_ms"] for r in results.values())
    return {
        "range": params,
        "reports_http_in_process": results,
        "one_year_report_p95_max_ms": slowest,
        "query_plans": plans,
    }
