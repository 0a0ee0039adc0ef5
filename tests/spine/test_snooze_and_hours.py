"""Snoozed conversations reopen themselves; business hours and the automatic reply outside them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from communications.business_hours import BusinessHours, BusinessHoursInvalid, parse_intervals
from communications.models import Channel, Conversation, Message, RealtimeEvent
from communications.services import away
from communications.services.conversations import reopen_due_snoozed
from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
from communications.services.ingest import ingest_messages as ingest_now
from communications.tasks import reopen_due_snoozed as reopen_task
from tests import factories

pytestmark = pytest.mark.django_db

BERLIN_HOURS = {
    "time_zone": "Europe/Berlin",
    "week": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-24"],
    "away_reply": "We are closed; we answer from 9:00.",
}
# Berlin is UTC+1 in December.
MONDAY_NOON = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
MONDAY_EVENING = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # 19:00
TUESDAY_EARLY = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # 07:00, same closed period
TUESDAY_EVENING = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)  # the next closed period


def inbound(sender="cust", n=1, **kwargs) -> InboundMessage:
    return InboundMessage(
        sender=InboundSender(external_id=sender, name="Ann"),
        content=f"hello {n}",
        external_id=f"{sender}-{n}",
        **kwargs,
    )


# --- Snooze ---------------------------------------------------------------------------------


def test_beat_reopens_due_snoozed_conversations_with_an_event_each(
    channel, django_capture_on_commit_callbacks
):
    now = timezone.now()
    due = factories.ConversationFactory(
        channel=channel, status="snoozed", snoozed_until=now - timedelta(minutes=1)
    )
    later = factories.ConversationFactory(
        channel=channel, status="snoozed", snoozed_until=now + timedelta(hours=1)
    )
    resolved = factories.ConversationFactory(channel=channel, status="resolved")

    with django_capture_on_commit_callbacks() as callbacks:
        assert reopen_task() == 1
    due.refresh_from_db()
    assert (due.status, due.snoozed_until, due.version) == ("open", None, 2)
    later.refresh_from_db()
    assert later.status == "snoozed"
    resolved.refresh_from_db()
    assert resolved.status == "resolved"
    updated = RealtimeEvent.objects.get(type="conversation.updated")
    assert (updated.conversation_id, updated.payload["status"]) == (due.pk, "open")
    assert len(callbacks) == 1  # the broadcast, after commit
    assert reopen_due_snoozed() == 0  # nothing left to do: no second event
    # the reopen's conversation.updated and its activity line (activity.created)
    assert sorted(RealtimeEvent.objects.values_list("type", flat=True)) == [
        "activity.created",
        "conversation.updated",
    ]


def test_reopen_costs_two_statements_per_conversation_and_one_to_find_them(channel, count_queries):
    past = timezone.now() - timedelta(minutes=5)
    for _ in range(3):
        factories.ConversationFactory(channel=channel, status="snoozed", snoozed_until=past)
    with count_queries() as queries:
        assert reopen_due_snoozed() == 3
    # find the due ids; per conversation: savepoint, lock+read, savepoint, update, activity
    # line, events, release, release.
    assert queries.count == 1 + 3 * 8, queries.explain()


def test_a_customer_writing_reopens_a_snoozed_conversation_before_its_time(channel):
    ingest_messages(channel, [inbound(n=1)])
    Conversation.objects.update(status="snoozed", snoozed_until=timezone.now() + timedelta(days=1))
    ingest_messages(channel, [inbound(n=2)])
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.snoozed_until) == ("open", None)
    assert reopen_due_snoozed() == 0


def test_the_due_index_is_partial_on_snoozed():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL index")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'conv_snoozed_due'")
        (definition,) = cursor.fetchone()
    assert "(snoozed_until)" in definition and "'snoozed'" in definition


# --- Business hours ---------------------------------------------------------------------------


def test_open_and_closed_by_schedule_time_zone_and_holiday():
    hours = BusinessHours.of(BERLIN_HOURS)
    assert hours.is_open(MONDAY_NOON)
    assert not hours.is_open(MONDAY_EVENING)
    assert not hours.is_open(datetime(2026, 12, 7, 7, 30, tzinfo=UTC))  # 08:30 Berlin
    assert hours.is_open(datetime(2026, 12, 7, 8, 0, tzinfo=UTC))  # 09:00 sharp
    assert not hours.is_open(datetime(2026, 12, 24, 11, 0, tzinfo=UTC))  # a holiday (Thursday)
    assert not hours.is_open(datetime(2026, 12, 12, 11, 0, tzinfo=UTC))  # Saturday
    # Friday evening to Monday 9:00 is one closed period; the holiday joins two.
    assert hours.next_opening(datetime(2026, 12, 11, 18, 0, tzinfo=UTC)) == datetime(
        2026, 12, 14, 8, 0, tzinfo=UTC
    )
    assert hours.next_opening(datetime(2026, 12, 23, 18, 0, tzinfo=UTC)) == datetime(
        2026, 12, 25, 8, 0, tzinfo=UTC
    )
    assert hours.closed_period_key(MONDAY_EVENING) == hours.closed_period_key(TUESDAY_EARLY)
    assert hours.closed_period_key(MONDAY_EVENING) != hours.closed_period_key(TUESDAY_EVENING)
    assert BusinessHours.of({}) is None  # no hours: always open


def test_interval_parsing_names_the_problem():
    assert parse_intervals("13:30-18:00, 9:00-12:30") == [["09:00", "12:30"], ["13:30", "18:00"]]
    assert parse_intervals("00:00-24:00") == [["00:00", "24:00"]]
    for text, problem in [
        ("9-5", "not a time"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00", "not a range"),
        ("09:00-12:00, 11:00-13:00", "overlaps"),
    ]:
        with pytest.raises(BusinessHoursInvalid, match=problem):
            parse_intervals(text, day="Monday")


@pytest.fixture
def closed_channel(channel, manager):
    channel.business_hours = BERLIN_HOURS
    channel.save()
    return channel


def test_away_reply_once_per_conversation_per_closed_period(
    closed_channel, monkeypatch, django_capture_on_commit_callbacks
):
    def ingest_messages(channel, items):  # and run what waits for the commit (the task)
        with django_capture_on_commit_callbacks(execute=True):
            return ingest_now(channel, items)

    clock = {"now": MONDAY_EVENING}
    monkeypatch.setattr(away.timezone, "now", lambda: clock["now"])
    ingest_messages(closed_channel, [inbound(n=1)])
    conversation = Conversation.objects.get()
    replies = Message.objects.filter(conversation=conversation, direction="out")
    assert [(m.content, m.client_id, m.sender_user_id) for m in replies.all()] == [
        (BERLIN_HOURS["away_reply"], f"away:{conversation.pk}:20261208T0800Z", None)
    ]
    # The automatic reply leaves the customer's message unread for the team.
    conversation.refresh_from_db()
    assert conversation.unread_count == 1

    ingest_messages(closed_channel, [inbound(n=2)])
    clock["now"] = TUESDAY_EARLY
    ingest_messages(closed_channel, [inbound(n=3)])
    assert replies.count() == 1  # the same closed period

    clock["now"] = TUESDAY_EVENING.replace(day=8, hour=10)  # Tuesday 11:00 Berlin: open
    ingest_messages(closed_channel, [inbound(n=4)])
    assert replies.count() == 1
    clock["now"] = TUESDAY_EVENING
    ingest_messages(closed_channel, [inbound(n=5)])
    assert replies.count() == 2  # a new closed period


def test_no_away_reply_during_hours_nor_for_history(
    closed_channel, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(away.timezone, "now", lambda: MONDAY_NOON)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_messages(closed_channel, [inbound(n=1)])
    assert not Message.objects.filter(direction="out").exists()
    monkeypatch.setattr(away.timezone, "now", lambda: MONDAY_EVENING)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ingest_messages(closed_channel, [inbound(n=2, historical=True)])
    assert len(callbacks) == 1  # the broadcast; no task queued
    assert not Message.objects.filter(direction="out").exists()


def test_a_channel_without_away_reply_queues_nothing(
    channel, django_capture_on_commit_callbacks, count_queries
):
    channel.business_hours = {**BERLIN_HOURS, "away_reply": ""}
    channel.save()
    ingest_messages(channel, [inbound(n=1)])
    with count_queries() as queries, django_capture_on_commit_callbacks() as callbacks:
        ingest_messages(channel, [inbound(n=2)])
    assert queries.count == 8, queries.explain()
    assert len(callbacks) == 1  # the events' broadcast only


def test_running_again_sends_nothing_more(closed_channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        ingest_messages(closed_channel, [inbound(n=1)])  # the task not run
    conversation = Conversation.objects.get()
    for _ in range(3):
        away.send_away_replies(closed_channel.pk, [conversation.pk], now=MONDAY_EVENING)
        away.send_away_replies(closed_channel.pk, [conversation.pk], now=TUESDAY_EARLY)
    assert Message.objects.filter(direction="out").count() == 1


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    admin = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def _channel_form(channel, **overrides) -> dict:
    form = {
        "name": channel.name,
        "is_active": "on",
        "auto_assignment": "off",
        "assignment_team": "",
        "hours_time_zone": "Europe/Berlin",
        "hours_holidays": "2026-12-24\n2026-12-25",
        "hours_away_reply": "Closed now.",
        "hours_mon": "09:00-12:30, 13:30-18:00",
        "hours_tue": "",
        "hours_wed": "",
        "hours_thu": "",
        "hours_fri": "",
        "hours_sat": "",
        "hours_sun": "",
    }
    form.update(overrides)
    return form


def test_admin_edits_business_hours_and_assignment(staff_client):
    channel = factories.ChannelFactory(kind=Channel.Kind.API)
    team = factories.TeamFactory()
    channel.teams.add(team)
    url = f"/admin/communications/channel/{channel.pk}/change/"
    page = staff_client.get(url)
    assert b"Business hours" in page.content and b"Auto-assignment" in page.content

    form = _channel_form(
        channel, teams=[team.pk], auto_assignment="balanced", assignment_team=team.pk
    )
    answer = staff_client.post(url, form)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    channel.refresh_from_db()
    assert channel.auto_assignment == "balanced" and channel.assignment_team == team
    assert channel.business_hours == {
        "time_zone": "Europe/Berlin",
        "week": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]]},
        "holidays": ["2026-12-24", "2026-12-25"],
        "away_reply": "Closed now.",
    }
    assert b"09:00-12:30, 13:30-18:00" in staff_client.get(url).content


def test_admin_refuses_bad_hours_naming_the_field(staff_client):
    channel = factories.ChannelFactory(kind=Channel.Kind.API)
    other_team = factories.TeamFactory()
    url = f"/admin/communications/channel/{channel.pk}/change/"
    answer = staff_client.post(
        url,
        _channel_form(
            channel,
            hours_time_zone="Mars/Olympus",
            hours_tue="18:00-09:00",
            hours_holidays="Christmas",
            assignment_team=other_team.pk,
        ),
    )
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert "not a time zone" in errors["hours_time_zone"][0]
    assert "ends before it starts" in errors["hours_tue"][0]
    assert "not a date" in errors["hours_holidays"][0]
    assert "not one of this channel's teams" in errors["assignment_team"][0]
    channel.refresh_from_db()
    assert channel.business_hours == {}
