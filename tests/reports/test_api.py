"""GET /api/v1/reports/<name>/: permission, validation with clear messages, exact queries."""

from datetime import date

import pytest
from django.urls import reverse

from reports.rollups import rebuild_rollups
from reports.selectors import REPORTS
from tests import factories

from .conftest import client_for

pytestmark = pytest.mark.django_db
RANGE = "from_date=2026-01-01&to_date=2026-01-31"


@pytest.fixture
def built(dataset):
    rebuild_rollups(date(2026, 1, 1), date(2026, 1, 31))
    return dataset


@pytest.mark.parametrize("name", list(REPORTS))
def test_each_report_for_a_lead_costs_three_queries(built, lead, name, count_queries):
    client = client_for(lead)
    with count_queries() as q:
        response = client.get(f"/api/v1/reports/{name}/?{RANGE}&channel={built['A'].pk}")
    assert response.status_code == 200, response.content
    # token + user, the permission (one EXISTS), the rollups (names joined in)
    assert q.count == 3, q.explain()
    body = response.json()
    assert body["report"] == name
    assert body["filters"] == {
        "from_date": "2026-01-01",
        "to_date": "2026-01-31",
        "channel": str(built["A"].pk),
    }


def test_staff_need_no_permission_query(built, count_queries):
    client = client_for(factories.UserFactory(username="boss", is_staff=True))
    with count_queries() as q:
        response = client.get(f"/api/v1/reports/first_response/?{RANGE}")
    assert response.status_code == 200 and q.count == 2, q.explain()
    assert response.json()["median_seconds"] == 450


def test_a_manager_without_the_permission_is_refused(dataset, manager, client):
    response = client_for(manager).get(f"/api/v1/reports/conversations/?{RANGE}")
    assert response.status_code == 403
    assert response.json()["detail"] == "you may not read reports"
    client.force_login(manager)
    assert client.get(reverse("reports")).status_code == 403


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("from_date=2026-13-01", "from_date", "'2026-13-01' is not a date: use YYYY-MM-DD"),
        ("to_date=yesterday", "to_date", "'yesterday' is not a date: use YYYY-MM-DD"),
        (
            "from_date=2026-02-01&to_date=2026-01-01",
            "to_date",
            "2026-01-01 is before from_date 2026-02-01",
        ),
        (
            "from_date=2025-01-01&to_date=2026-01-02",
            "to_date",
            "the range is 367 days long; at most 366 days per report",
        ),
        ("channel=abc", "channel", "'abc' is not a channel id"),
        ("team=-3", "team", "'-3' is not a team id"),
    ],
)
def test_bad_parameters_are_400s_naming_them(lead, query, field, message):
    response = client_for(lead).get(f"/api/v1/reports/conversations/?{query}")
    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_a_year_is_allowed(lead):
    response = client_for(lead).get(
        "/api/v1/reports/conversations/?from_date=2025-01-01&to_date=2025-12-31"
    )
    assert response.status_code == 200 and len(response.json()["days"]) == 365


def test_an_unknown_report_is_a_404_listing_the_names(lead):
    response = client_for(lead).get("/api/v1/reports/nope/")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no report 'nope'; reports are conversations,")


def test_defaults_are_the_last_30_days(lead):
    data = client_for(lead).get("/api/v1/reports/conversations/").json()
    assert len(data["days"]) == 30 and data["days"][-1]["day"] == data["filters"]["to_date"]


def test_the_page_renders_every_plot_with_its_table(built, lead, client, count_queries):
    client.force_login(lead)
    with count_queries() as q:
        response = client.get(f"/reports/?{RANGE}&team={built['T1'].pk}")
    assert response.status_code == 200
    # session, user, permission, six reports, channels, teams
    assert q.count == 11, q.explain()
    html = response.content.decode()
    for name in REPORTS:
        assert f'id="chart-{name}"' in html
        assert f'data-report="{name}"' in html
    assert html.count("<table>") == len(REPORTS)
    assert 'aria-current="page">Reports</a>' in html
    assert "<title>01-05 · opened: 2</title>" in html  # c1 and c2 (T1, Monday in Berlin)
    assert "<title>01-06 · opened: 1</title>" in html  # c5 (c3 and c4 are T2)
    bad = client.get("/reports/?from_date=nope").content.decode()
    assert "from_date: &#x27;nope&#x27; is not a date" in bad


def test_the_topbar_links_reports_only_for_those_who_may_read_them(lead, manager, client):
    client.force_login(lead)
    assert 'href="/reports/"' in client.get("/inbox/").content.decode()
    client.force_login(manager)
    assert 'href="/reports/"' not in client.get("/inbox/").content.decode()
