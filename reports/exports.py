"""CSV exports as long jobs (crm/jobs.py): a report, or the conversations of an inbox filter.

    job = start_export(user, {"report": "first_response", "from_date": …})   # or
    job = start_export(user, {"conversations": {"status": "open", "channel": "3"}})

One export per user at a time (the job's lock key; a second one is JobBusy → 409). The runner
writes the file to the default storage under exports/ and reports progress (rows / total);
the download (`/api/v1/exports/<id>/download/`) is for the user who asked, or staff, and for
a report only while they may still read reports."""

import csv
import io
import secrets

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.exceptions import PermissionDenied, ValidationError

from crm import jobs

from .access import can_view_reports
from .selectors import REPORTS, build_report, report_params
from .tables import report_table

KIND = "csv_export"
BEAT_EVERY = 500
CONVERSATION_COLUMNS = [
    ("id", "id"),
    ("channel", "channel__name"),
    ("contact", "contact__name"),
    ("status", "status"),
    ("assignee", "assignee__username"),
    ("team", "team__name"),
    ("subject", "subject"),
    ("created_at", "created_at"),
    ("last_message_at", "last_message_at"),
    ("archived", "is_archived"),
]
CONVERSATION_FILTERS = (
    "status",
    "channel",
    "assignee",
    "team",
    "unread",
    "label",
    "q",
    "archived",
    "from_date",
    "to_date",
)


def validate_request(user, data) -> tuple[dict, str]:
    """The job's params and title from a POST body; 400/403 for what cannot be exported."""
    if not isinstance(data, dict):
        raise ValidationError({"detail": ["send a JSON object"]})
    report = data.get("report")
    conversations = data.get("conversations")
    if (report is None) == (conversations is None):
        raise ValidationError(
            {"detail": ["give either 'report' (a report name) or 'conversations' (list filters)"]}
        )
    if report is not None:
        if report not in REPORTS:
            raise ValidationError(
                {"report": [f"unknown report '{report}'; one of {', '.join(REPORTS)}"]}
            )
        if not can_view_reports(user):
            raise PermissionDenied("you may not read reports")
        filters = report_params(
            {k: _text(data.get(k)) for k in ("from_date", "to_date", "channel", "team")}
        )
        query = filters.as_query()
        title = f"{report} {query['from_date']}..{query['to_date']}"
        return {"report": report, "filters": query}, title
    if not isinstance(conversations, dict):
        raise ValidationError(
            {"conversations": ['an object of list filters, e.g. {"status": "open"}']}
        )
    unknown = sorted(set(conversations) - set(CONVERSATION_FILTERS))
    if unknown:
        raise ValidationError(
            {
                "conversations": [
                    f"unknown filter {', '.join(unknown)}; one of {', '.join(CONVERSATION_FILTERS)}"
                ]
            }
        )
    filters = {k: _text(v) for k, v in conversations.items() if v not in (None, "")}
    _conversations(user, filters)  # a bad value is a 400 now, not a failed job later
    return {"conversations": filters}, "conversations " + (
        " ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "(all)"
    )


def _text(value):
    return value if value is None else str(value)


def _conversations(user, filters: dict):
    from communications.selectors import filtered_conversations

    return filtered_conversations(user, filters, all_history="archived" not in filters)


def start_export(user, data) -> jobs.Job:
    params, title = validate_request(user, data)
    return jobs.start_job(
        KIND, lock_key=f"user:{user.pk}", title=f"CSV {title}", params=params, user=user
    )


def run_export(job, progress: jobs.Progress) -> dict:
    user = get_user_model().objects.get(pk=job.requested_by_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if "report" in job.params:
        name = job.params["report"]
        if not can_view_reports(user):
            raise PermissionError(f"{user} may no longer read reports")
        data = build_report(name, report_params(job.params["filters"]))
        header, rows = report_table(name, data)
        progress.beat(rows=0, total=len(rows))
        writer.writerow(header)
        for count, row in enumerate(rows, 1):
            writer.writerow([_cell(v) for v in row])
            if count % BEAT_EVERY == 0:
                progress.beat(rows=count)
        filename = f"{name}-{data['filters']['from_date']}-{data['filters']['to_date']}.csv"
        total = len(rows)
    else:
        queryset = _conversations(user, job.params["conversations"]).order_by(
            "-last_message_at", "-id"
        )
        total = queryset.count()
        progress.beat(rows=0, total=total)
        writer.writerow([name for name, _ in CONVERSATION_COLUMNS])
        count = 0
        for row in queryset.values_list(*[c for _, c in CONVERSATION_COLUMNS]).iterator(
            chunk_size=1000
        ):
            writer.writerow([_cell(v) for v in row])
            count += 1
            if count % BEAT_EVERY == 0:
                progress.beat(rows=count)
        filename = "conversations.csv"
        total = count
    path = default_storage.save(
        f"exports/{job.pk}-{secrets.token_hex(8)}.csv", ContentFile(buffer.getvalue().encode())
    )
    progress.beat(rows=total, total=total)
    return {"rows": total, "file": path, "filename": filename}


def _cell(value):
    """A cell as text; one a spreadsheet would run as a formula (=, +, -, @) is quoted."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def may_download(user, job) -> bool:
    if job.kind != KIND:
        return False
    if not (user.is_staff or job.requested_by_id == user.pk):
        return False
    return "report" not in job.params or can_view_reports(user)


def export_payload(job) -> dict:
    payload = jobs.job_payload(job)
    payload["status_url"] = f"/api/v1/exports/{job.pk}/"
    payload["download_url"] = (
        f"/api/v1/exports/{job.pk}/download/" if job.state == job.State.DONE else None
    )
    return payload


def register() -> None:
    jobs.register_runner(KIND, run_export)
