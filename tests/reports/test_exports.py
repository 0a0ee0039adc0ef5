"""CSV exports as long jobs: 202 + job, progress, one per user (409 with the running job), the
file's content, and a permission-checked download."""

import csv
import io
from datetime import date

import pytest

from crm.models import Job
from reports import exports
from reports.rollups import rebuild_rollups
from tests import factories

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def built(dataset):
    rebuild_rollups(date(2026, 1, 1), date(2026, 1, 31))
    return dataset


def rows_of(client, payload) -> list[list[str]]:
    response = client.get(payload["download_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_report_export_is_a_job_that_ends_with_a_download(
    built, lead, django_capture_on_commit_callbacks
):
    client = client_for(lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/exports/",
            {"report": "first_response", "from_date": "2026-01-01", "to_date": "2026-01-31"},
            format="json",
        )
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["state"] == "queued" and job["status_url"] == f"/api/v1/exports/{job['id']}/"
    status = client.get(job["status_url"]).json()  # the eager task ran after commit
    assert status["state"] == "done", status["error"]
    assert status["progress"] == {"rows": 10, "total": 10}
    assert status["result"]["filename"] == "first_response-2026-01-01-2026-01-31.csv"
    rows = rows_of(client, status)
    assert rows[0] == ["bin", "from_seconds", "to_seconds", "conversations"]
    assert rows[2] == ["1–5 min", "60", "300", "1"]
    assert rows[-2:] == [
        ["median (seconds)", "450.0", "", "4"],
        ["p90 (seconds)", "2700.0", "", "4"],
    ]


def test_a_conversation_list_export_respects_the_filter_and_access(
    built, django_capture_on_commit_callbacks
):
    # A manager of team T2 sees channel B only: c3 and c4; open ones: c4.
    manager = factories.UserFactory(username="t2-manager")
    built["T2"].members.add(manager)
    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/exports/", {"conversations": {"status": "open"}}, format="json"
        )
    assert response.status_code == 202, response.content
    status = client.get(response.json()["status_url"]).json()
    assert status["state"] == "done", status["error"]
    rows = rows_of(client, status)
    assert rows[0][:4] == ["id", "channel", "contact", "status"]
    assert {(r[1], r[3]) for r in rows[1:]} == {("B", "open")}
    assert len(rows) == 3  # c3 and c4 are open (resolving wrote activity, not the status)


def test_one_export_per_user_at_a_time(lead, built):
    client = client_for(lead)
    first = client.post("/api/v1/exports/", {"report": "managers"}, format="json")
    assert first.status_code == 202  # queued: the eager task runs only after commit
    second = client.post("/api/v1/exports/", {"report": "messages"}, format="json")
    assert second.status_code == 409
    assert second.json()["detail"] == "your previous export is still running; one export at a time"
    assert second.json()["job"]["id"] == first.json()["id"]
    assert second.json()["job"]["download_url"] is None
    # Someone else may export meanwhile.
    other = client_for(factories.UserFactory(username="boss", is_staff=True))
    assert other.post("/api/v1/exports/", {"report": "managers"}, format="json").status_code == 202


def test_progress_is_reported_while_it_runs(built, monkeypatch):
    admin = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    job = exports.start_export(admin, {"conversations": {}})  # all five conversations
    seen = []
    real_beat = exports.jobs.Progress.beat

    def beat(self, **counters):
        real_beat(self, **counters)
        seen.append(dict(Job.objects.get(pk=job.pk).progress))

    monkeypatch.setattr(exports.jobs.Progress, "beat", beat)
    monkeypatch.setattr(exports, "BEAT_EVERY", 2)
    assert exports.jobs.run_job(job.pk) == "done"
    assert seen == [
        {"rows": 0, "total": 5},
        {"rows": 2, "total": 5},
        {"rows": 4, "total": 5},
        {"rows": 5, "total": 5},
    ]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"report": "nope"}, 400, "unknown report 'nope'"),
        ({}, 400, "give either 'report'"),
        ({"report": "managers", "conversations": {}}, 400, "give either 'report'"),
        ({"report": "managers", "from_date": "x"}, 400, "'x' is not a date"),
        ({"conversations": {"status": "closed"}}, 400, "must be one of"),
        ({"conversations": {"colour": "red"}}, 400, "unknown filter colour"),
        ({"conversations": "open"}, 400, "an object of list filters"),
    ],
)
def test_bad_export_requests_are_400s_naming_the_problem(lead, body, status, message):
    response = client_for(lead).post("/api/v1/exports/", body, format="json")
    assert response.status_code == status
    assert message in str(response.json())
    assert not Job.objects.exists()


def test_a_report_export_needs_the_permission(manager):
    response = client_for(manager).post("/api/v1/exports/", {"report": "managers"}, format="json")
    assert response.status_code == 403


def test_the_download_is_only_for_its_owner_and_staff(
    built, lead, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = exports.start_export(lead, {"report": "messages", "from_date": "2026-01-01"})
    job.refresh_from_db()
    assert job.state == "done", job.error
    url = f"/api/v1/exports/{job.pk}/download/"
    assert client_for(manager).get(url).status_code == 404
    assert client_for(manager).get(f"/api/v1/exports/{job.pk}/").status_code == 404
    staff = client_for(factories.UserFactory(username="boss", is_staff=True))
    assert staff.get(url).status_code == 200
    # The lead loses the permission: a report's file is no longer theirs to read.
    lead.groups.clear()
    assert client_for(lead).get(url).status_code == 404


def test_csv_cells_that_spreadsheets_would_run_are_quoted():
    assert exports._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert exports._cell("@cmd") == "'@cmd"
    assert exports._cell("-3") == "-3"
    assert exports._cell(None) == ""
