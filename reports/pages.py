"""`/reports/`: every report as a server-rendered SVG plot with its table, the filters, and
CSV exports (a job each, with a progress bar: static/reports/reports.js)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_GET
from rest_framework.exceptions import ValidationError

from communications.models import Channel, Conversation
from crm.models import Team

from . import svg
from .access import can_view_reports
from .selectors import REPORTS, build_report, report_params
from .tables import report_table


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _plot(name: str, data: dict) -> str:
    title = data["title"]
    if name == "conversations":
        labels = [d["day"][5:] for d in data["days"]]
        return svg.bar_chart(
            "chart-conversations",
            title,
            labels,
            [
                ("opened", "s0", [d["opened"] for d in data["days"]]),
                ("resolved", "s1", [d["resolved"] for d in data["days"]]),
            ],
        )
    if name in ("first_response", "resolution"):
        return svg.bar_chart(
            f"chart-{name}",
            f"{title}: conversations per duration",
            [b["label"] for b in data["histogram"]],
            [("conversations", "s0", [b["count"] for b in data["histogram"]])],
        )
    if name == "messages":
        channels = data["channels"]
        return svg.bar_chart(
            "chart-messages",
            title,
            [c["channel"] for c in channels],
            [
                ("in", "s0", [c["in"] for c in channels]),
                ("out", "s1", [c["out"] for c in channels]),
            ],
        )
    if name == "managers":
        managers = data["managers"]
        return svg.bar_chart(
            "chart-managers",
            "Conversations assigned and resolved per manager",
            [m["name"] for m in managers],
            [
                ("assigned", "s0", [m["assigned"] for m in managers]),
                ("resolved", "s1", [m["resolved"] for m in managers]),
            ],
        )
    return svg.heatmap(
        "chart-busiest_hours",
        title,
        data["weekdays"],
        [f"{h:02d}" for h in data["hours"]],
        data["inbound"],
    )


LEGENDS = {
    "conversations": [("s0", "opened"), ("s1", "resolved")],
    "messages": [("s0", "in"), ("s1", "out")],
    "managers": [("s0", "assigned"), ("s1", "resolved")],
    "first_response": [("s0", "conversations")],
    "resolution": [("s0", "conversations")],
}


def _summary(name: str, data: dict) -> list[tuple[str, str]]:
    if name == "conversations":
        return [
            ("Opened", str(data["totals"]["opened"])),
            ("Resolved", str(data["totals"]["resolved"])),
        ]
    if name in ("first_response", "resolution"):
        return [
            ("Median", _duration(data["median_seconds"])),
            ("p90", _duration(data["p90_seconds"])),
            ("Conversations", str(data["count"])),
        ]
    if name == "messages":
        return [("In", str(data["totals"]["in"])), ("Out", str(data["totals"]["out"]))]
    return []


@require_GET
@login_required
def reports_page(request):
    if not can_view_reports(request.user):
        raise PermissionDenied
    error = ""
    try:
        params = report_params(request.GET)
    except ValidationError as exc:
        error = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.detail.items())
        params = report_params({})
    sections = []
    for name in REPORTS:
        data = build_report(name, params)
        header, rows = report_table(name, data)
        sections.append(
            {
                "name": name,
                "title": data["title"],
                "plot": _plot(name, data),
                "legend": LEGENDS.get(name, []),
                "summary": _summary(name, data),
                "header": header,
                "rows": rows,
                "has_data": any(isinstance(v, int | float) and v for row in rows for v in row[1:]),
            }
        )
    return render(
        request,
        "reports/reports.html",
        {
            "params": params,
            "error": error,
            "sections": sections,
            "channels": Channel.objects.order_by("name").values_list("id", "name"),
            "teams": Team.objects.order_by("name").values_list("id", "name"),
            "statuses": Conversation.Status.choices,
            "time_zone": settings.TIME_ZONE,
        },
    )
