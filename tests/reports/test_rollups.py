"""The rollups and the reports over the hand-built dataset (conftest.py) equal the numbers
computed by hand; a rebuild replaces a day."""

from datetime import date

import pytest
from django.core.management import call_command

from communications.models import Message
from reports.models import DailyManagerRollup, DailyRollup
from reports.rollups import rebuild_rollups
from reports.selectors import build_report, percentile, report_params

pytestmark = pytest.mark.django_db

D1, D2 = date(2026, 1, 5), date(2026, 1, 6)


def report(name, **params):
    query = {"from_date": "2026-01-01", "to_date": "2026-01-31"} | {
        k: str(v) for k, v in params.items()
    }
    return build_report(name, report_params(query))


@pytest.fixture
def built(dataset):
    rebuild_rollups(date(2026, 1, 1), date(2026, 1, 31))
    return dataset


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.9) == 7
    assert percentile([120, 300, 600, 3600], 0.5) == 450
    assert percentile([3600, 120, 600, 300], 0.9) == 2700  # 600 + 0.7 × 3000


def test_opened_and_resolved_per_local_day(built):
    data = report("conversations")
    days = {d["day"]: (d["opened"], d["resolved"]) for d in data["days"]}
    assert len(data["days"]) == 31
    # c2 opened 22:30Z = 23:30 in Berlin: still Monday; c3 at 23:10Z = 00:10 Tuesday.
    assert days["2026-01-05"] == (2, 1)
    # c2's resolve at 01:30Z Tuesday, c3 resolved twice.
    assert days["2026-01-06"] == (3, 3)
    assert data["totals"] == {"opened": 5, "resolved": 4}


def test_first_response_median_p90_and_histogram(built):
    data = report("first_response")
    # 120 (c1), 3600 (c2: the away reply and bob's note are not replies), 600 (c3: the failed
    # reply is not one), 300 (c4); c5 has none.
    assert data["count"] == 4
    assert data["median_seconds"] == 450
    assert data["p90_seconds"] == 2700
    counts = {b["label"]: b["count"] for b in data["histogram"]}
    assert counts["1–5 min"] == 1  # 120
    assert counts["5–15 min"] == 2  # 300, 600
    assert counts["1–4 h"] == 1  # 3600 (bins include their lower bound)
    assert sum(counts.values()) == 4


def test_first_response_is_counted_on_the_local_day_of_the_reply(built):
    # c2's reply at 23:30Z on Jan 5 is 00:30 on Jan 6 in Berlin.
    second_day = report("first_response", from_date="2026-01-06", to_date="2026-01-06")
    assert second_day["count"] == 3
    assert second_day["median_seconds"] == 600
    first_day = report("first_response", from_date="2026-01-05", to_date="2026-01-05")
    assert (first_day["count"], first_day["median_seconds"]) == (1, 120)


def test_resolution_times_count_each_conversations_first_resolution(built):
    data = report("resolution")
    assert data["count"] == 3  # 7200, 10800, 36000; c3's second resolve is not a second time
    assert data["median_seconds"] == 10800
    assert data["p90_seconds"] == 30960  # 10800 + 0.8 × 25200


def test_messages_per_channel(built):
    data = report("messages")
    rows = {c["channel"]: (c["in"], c["out"]) for c in data["channels"]}
    # Out: replies and the away reply; never notes or failed sends.
    assert rows == {"A": (3, 3), "B": (3, 2)}
    assert data["totals"] == {"in": 6, "out": 5}


def test_busiest_hours_by_local_weekday_and_hour(built):
    data = report("busiest_hours")
    cells = {
        (data["weekdays"][w], h): n
        for w, line in enumerate(data["inbound"])
        for h, n in enumerate(line)
        if n
    }
    assert cells == {
        ("Mon", 9): 1,
        ("Mon", 23): 1,
        ("Tue", 0): 1,
        ("Tue", 11): 1,
        ("Tue", 12): 2,
    }
    assert data["max"] == 2


def test_managers_table(built):
    rows = {m["name"]: m for m in report("managers")["managers"]}
    assert rows["Alice Ng"] | {"user_id": 0} == {
        "user_id": 0,
        "name": "Alice Ng",
        "assigned": 3,
        "resolved": 3,
        "first_responses": 2,
        "median_first_response_seconds": 360,
    }
    assert (rows["Bob"]["assigned"], rows["Bob"]["resolved"]) == (1, 1)
    assert rows["Bob"]["median_first_response_seconds"] == 1950  # 3600 and 300 (c4)


def test_channel_and_team_filters(built):
    a, t2 = built["A"], built["T2"]
    assert report("first_response", channel=a.pk)["median_seconds"] == 1860  # 120, 3600
    assert report("conversations", team=t2.pk)["totals"] == {"opened": 2, "resolved": 2}
    assert [m["name"] for m in report("managers", team=t2.pk)["managers"]] == ["Alice Ng", "Bob"]


def test_rebuilding_is_idempotent_and_replaces_a_day(dataset):
    def snapshot():
        return sorted(
            DailyRollup.objects.values_list(
                "day",
                "channel_id",
                "team_id",
                "opened",
                "resolved",
                "messages_in",
                "messages_out",
                "first_response_seconds",
                "resolution_seconds",
                "inbound_by_hour",
            )
        ), sorted(
            DailyManagerRollup.objects.values_list(
                "day", "user_id", "assigned", "resolved", "first_response_seconds"
            )
        )

    rebuild_rollups(D1, D2)
    first = snapshot()
    assert first[0] and first[1]
    rebuild_rollups(D1, D2)
    assert snapshot() == first
    # A day's data changes: the rebuild replaces its rows, and a day left empty has none.
    Message.objects.filter(created_at__date=D1, direction="in").delete()
    rebuild_rollups(D1, D1)
    assert sum(DailyRollup.objects.filter(day=D1).values_list("messages_in", flat=True)) == 0
    assert DailyRollup.objects.filter(day=D2).count() == len([r for r in first[0] if r[0] == D2])


def test_rebuild_rollups_command(dataset, capsys):
    call_command("rebuild_rollups", "--from", "2026-01-05", "--to", "2026-01-06")
    assert "Rebuilt 2 days" in capsys.readouterr().out
    assert DailyRollup.objects.filter(day=D2).exists()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--from 'nope' is not a date"):
        call_command("rebuild_rollups", "--from", "nope")
    with pytest.raises(CommandError, match="is after --to"):
        call_command("rebuild_rollups", "--from", "2026-01-07", "--to", "2026-01-06")


def test_beat_refreshes_yesterday_and_today(settings, people):
    from django.utils import timezone

    from reports import tasks
    from tests import factories

    assert settings.CELERY_BEAT_SCHEDULE["refresh-report-rollups"]["task"] == (
        "reports.tasks.refresh_rollups"
    )
    conversation = factories.ConversationFactory()
    factories.MessageFactory(conversation=conversation, created_at=timezone.now())
    assert tasks.refresh_rollups.delay().get()["days"] == 2
    assert DailyRollup.objects.get().messages_in == 1


def test_the_managers_table_is_the_same_in_sql_and_in_python(built):
    from reports import selectors

    params = report_params({"from_date": "2026-01-01", "to_date": "2026-01-31"})
    in_sql = sorted(selectors._managers_in_sql(params))
    in_python = sorted(selectors._managers_in_python(params))
    assert [r[:7] for r in in_sql] == [r[:7] for r in in_python]
    assert [float(r[7]) for r in in_sql] == [float(r[7]) for r in in_python] == [360, 1950]
