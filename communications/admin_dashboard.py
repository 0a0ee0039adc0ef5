"""What staff see first on the admin index: open conversations per team, failed sends, webhook
errors of the last 24 h, worker and Matrix health, each linking to the filtered list behind it.

Cheap whatever the table sizes: every count is bounded (COUNT over a LIMITed subquery, shown
as "1000+"), failed sends are read through the partial index on failed messages, the health
checks read the cache (and Matrix at most one row). Never COUNT(*) over messages.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from crm.models import Team

from .models import Conversation, Message, WebhookDelivery

COUNT_CAP = 1000  # counts above this show as "1000+"
TEAM_ROWS = 50  # the dashboard lists this many teams at most


@dataclass(frozen=True)
class Tile:
    label: str
    count: int
    url: str

    @property
    def shown(self) -> str:
        return f"{COUNT_CAP}+" if self.count > COUNT_CAP else str(self.count)


def _conversations_url(**filters) -> str:
    base = reverse("admin:communications_conversation_changelist")
    return f"{base}?{urlencode({'status__exact': 'open', 'is_archived__exact': '0', **filters})}"


def open_conversations_per_team() -> list[Tile]:
    """One query: each team (by name) and "No team", with its open conversations counted up
    to COUNT_CAP + 1 (the team_id index finds them; the LIMIT bounds the work)."""
    conversation = Conversation._meta.db_table
    team = Team._meta.db_table
    bounded = (
        f"(SELECT count(*) FROM (SELECT 1 FROM {conversation} c WHERE {{where}}"
        " AND c.status = %s AND NOT c.is_archived LIMIT %s) bounded)"
    )
    sql = (
        f"(SELECT t.id, t.name, {bounded.format(where='c.team_id = t.id')} AS open"
        f" FROM {team} t ORDER BY t.name, t.id LIMIT %s)"
        f" UNION ALL (SELECT NULL, NULL, {bounded.format(where='c.team_id IS NULL')})"
    )
    status, limit = Conversation.Status.OPEN, COUNT_CAP + 1
    with connection.cursor() as cursor:
        cursor.execute(sql, [status, limit, TEAM_ROWS, status, limit])
        rows = cursor.fetchall()
    return [
        Tile(name, count, _conversations_url(team__id__exact=team_id))
        if team_id is not None
        else Tile("No team", count, _conversations_url(team__isnull="True"))
        for team_id, name, count in rows
    ]


def failed_sends() -> Tile:
    """Served by the partial index on failed messages; bounded all the same."""
    count = (
        Message.objects.filter(status=Message.Status.FAILED).values("pk")[: COUNT_CAP + 1].count()
    )
    url = reverse("admin:communications_message_changelist") + "?delivery=failed"
    return Tile("Failed sends", count, url)


WEBHOOK_WINDOW = timedelta(hours=24)


def webhook_problems() -> dict[str, Q]:
    """The deliveries the webhook tiles count, by the filter value that lists them."""
    recent = Q(received_at__gte=timezone.now() - WEBHOOK_WINDOW)
    refused = [WebhookDelivery.Verdict.BAD_SIGNATURE, WebhookDelivery.Verdict.MALFORMED]
    return {
        "rejected": recent & Q(verdict__in=refused),
        "failed": recent & Q(outcome=WebhookDelivery.Outcome.FAILED),
    }


def webhook_errors() -> list[Tile]:
    """Both counts in one query, each bounded, read through the received_at index."""
    problems = webhook_problems()
    bounded = {
        name: WebhookDelivery.objects.filter(q).values("pk")[: COUNT_CAP + 1]
        for name, q in problems.items()
    }
    sql_parts, params = [], []
    for query in bounded.values():
        sql, part_params = query.query.sql_with_params()
        sql_parts.append(f"(SELECT count(*) FROM ({sql}) bounded)")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(sql_parts)}", params)
        counts = cursor.fetchone()
    base = reverse("admin:communications_webhookdelivery_changelist")
    labels = {"rejected": "Rejected webhooks (24 h)", "failed": "Failed webhooks (24 h)"}
    return [
        Tile(labels[name], count, f"{base}?{urlencode({'problem': name})}")
        for name, count in zip(bounded, counts, strict=True)
    ]


def health() -> list[dict]:
    """The worker, beat and Matrix checks of /health/, in words (providers register theirs
    with crm.health, so the core names none of them)."""
    from crm.health import _CHECKS, check_beat, check_worker

    checks = [("Background worker", check_worker), ("Scheduler (beat)", check_beat)]
    if "matrix_sync" in _CHECKS:
        checks.append(("Matrix sync", _CHECKS["matrix_sync"][0]))
    rows = []
    for label, check in checks:
        try:
            result = check()
        except Exception as exc:  # the dashboard reports a failing check, it does not raise
            result = {"status": "down", "detail": f"{exc.__class__.__name__}: {exc}"[:200]}
        detail = result.get("detail") or ", ".join(
            f"{key.replace('_', ' ')}: {value}" for key, value in result.items() if key != "status"
        )
        rows.append({"label": label, "status": result["status"], "detail": detail})
    return rows


def dashboard() -> dict:
    return {
        "teams": open_conversations_per_team(),
        "failed": failed_sends(),
        "webhooks": webhook_errors(),
        "health": health(),
    }
