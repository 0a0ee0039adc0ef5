"""Auto-assignment, availability and snooze in real Chromium: what a manager sees live."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from communications.models import Channel, Conversation, ManagerAvailability
from communications.services.conversations import reopen_due_snoozed
from tests import factories

from .conftest import login
from .test_inbox_browser import off_the_loop, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_availability_decides_who_gets_new_conversations_and_snoozes_reopen_live(
    live_server_url, chromium, screenshot
):
    channel = factories.ChannelFactory(
        name="Shop chat", auto_assignment=Channel.AutoAssignment.ROUND_ROBIN
    )
    team = factories.TeamFactory(name="Support", max_open_per_manager=5)
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    team.members.add(alice, carol)
    ManagerAvailability.objects.create(user=carol, status="online")

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    # Her open inbox made her available.
    expect(page.locator("#availability")).to_have_value("online")
    assert ManagerAvailability.objects.get(user=alice).status == "online"

    say(channel, "First question", sender="dana", name="Dana")
    first = page.locator("#conversations .row", has_text="Dana")
    expect(first.locator(".tag.assignee")).to_have_text("@ Alice Ng")

    page.select_option("#availability", "busy")
    expect(page.locator(".availability[data-status=busy]")).to_be_visible()
    assert ManagerAvailability.objects.get(user=alice).status == "busy"
    say(channel, "Second question", sender="erik", name="Erik")
    second = page.locator("#conversations .row", has_text="Erik")
    expect(second.locator(".tag.assignee")).to_have_text("@ Carol Diaz")
    say(channel, "Third question", sender="fay", name="Fay")
    expect(
        page.locator("#conversations .row", has_text="Fay").locator(".tag.assignee")
    ).to_have_text("@ Carol Diaz")
    screenshot(page, "assignment-01-busy")

    # The choice survives a reload.
    page.reload()
    expect(page.locator("#availability")).to_have_value("busy")

    # Snoozed from the thread with a preset; when its time has come beat reopens it and every
    # viewer sees it open again.
    dana = page.locator("#conversations .row", has_text="Dana")
    dana.click()
    expect(page.locator("#thread-header .head-name")).to_have_text("Dana")
    expect(dana.locator(".badge")).to_have_count(0)  # read: its update has re-drawn the header
    page.click("#thread-header .snooze-action")
    page.click('.popover .menu-item[data-preset="In 1 hour"]')
    expect(dana.locator(".tag.status-snoozed")).to_be_visible()
    conversation = Conversation.objects.get(contact__name="Dana")
    assert conversation.status == "snoozed"
    assert timedelta(minutes=50) < conversation.snoozed_until - timezone.now() <= timedelta(hours=1)
    # An hour later (moved back, not waited for):
    Conversation.objects.filter(pk=conversation.pk).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )
    assert off_the_loop(reopen_due_snoozed) == 1
    expect(dana.locator(".tag.status-snoozed")).to_have_count(0)
    expect(page.locator("#thread-header .status-action")).to_have_attribute(
        "data-action", "resolve"
    )
    screenshot(page, "assignment-02-reopened")
    context.close()
