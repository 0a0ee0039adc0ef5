"""Dates in the manager's locale and time zone (one helper), day separators in the thread,
relative times in the list, an empty customer pane that says what it is for, chips on one
line."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZONE = "America/New_York"
GERMAN_DAYS = {0: "Heute", 1: "Gestern", 2: "Vorgestern"}


@pytest.fixture
def thread_over_days(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    team.members.add(factories.UserFactory(username="alice", first_name="Alice"))
    now = timezone.now().replace(microsecond=0)
    times = [
        now - timedelta(days=9),
        now - timedelta(days=1, minutes=5),
        now - timedelta(days=1),
        now - timedelta(minutes=7),
    ]
    conversation = factories.ConversationFactory(channel=channel, last_message_at=times[-1])
    for n, at in enumerate(times):
        factories.MessageFactory(conversation=conversation, content=f"message {n}", created_at=at)
    return conversation, times, now


def test_dates_follow_the_managers_locale_and_time_zone(
    live_server_url, chromium, thread_over_days, screenshot
):
    conversation, times, now = thread_over_days
    context = chromium.new_context(
        viewport={"width": 1440, "height": 900}, locale="de-DE", timezone_id=ZONE
    )
    page = login(context, live_server_url, "alice")

    # nothing open: the customer pane says what it is for
    expect(page.locator(".card-empty")).to_be_visible()
    expect(page.locator(".card-empty")).to_contain_text("No conversation open")

    # the list: a relative time, German
    expect(page.locator(f'.row[data-id="{conversation.pk}"] .row-time')).to_have_text("7 Min.")

    open_conversation(page, conversation)
    expect(page.locator(".card-empty")).to_be_hidden()
    expect(page.locator("#messages .msg")).to_have_count(4)
    local = [at.astimezone(ZoneInfo(ZONE)) for at in times]
    today = now.astimezone(ZoneInfo(ZONE)).date()
    days = sorted({at.date() for at in local})
    labels = [
        GERMAN_DAYS.get((today - day).days)
        or f"{WEEKDAYS_DE[day.weekday()]}, {day.day}. {MONTHS_DE[day.month]}"
        for day in days
    ]
    separators = page.locator("#messages .day-separator")
    expect(separators).to_have_count(len(days))
    for label, separator in zip(labels, separators.all(), strict=True):
        assert label in separator.inner_text()
    # each bubble: the clock time only, in the manager's zone (the day is in the separator)
    clocks = page.locator("#messages .msg .meta time").all_inner_texts()
    assert clocks == [at.strftime("%H:%M") for at in local]
    screenshot(page, "dates-de-new-york")

    # a message arriving now lands under today's separator, not before it
    page.evaluate(
        """(at) => window.switchboard.thread.upsertMessage({id: 999999, conversation_id: window.switchboard.thread.id,
             direction: "in", kind: "text", status: "received", content: "just now", created_at: at, attachments: []})""",
        timezone.now().isoformat(),
    )
    expect(page.locator("#messages > *").last).to_contain_text("just now")
    expect(separators).to_have_count(len(days))
    context.close()


MONTHS_DE = dict(
    enumerate(
        "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(),
        start=1,
    )
)
WEEKDAYS_DE = "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split()


def test_status_chips_stay_on_one_line(live_server_url, chromium, thread_over_days):
    for size in ({"width": 1440, "height": 900}, {"width": 390, "height": 844}):
        context = chromium.new_context(viewport=size)
        page = login(context, live_server_url, "alice")
        tops = {
            round(box["y"])
            for box in (c.bounding_box() for c in page.locator(".chip").all())
            if box
        }
        assert len(tops) == 1, size
        context.close()
