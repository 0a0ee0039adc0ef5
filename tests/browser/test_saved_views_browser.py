"""Saved views in the inbox (issue 14 item 8): a manager saves the current filters as a view
shared with the team, sees its count in the sidebar move the moment a message arrives and
when a conversation leaves the view — from the events, with /inbox/counts/ refused after the
save — and clicking the view puts its filters in the URL and the list, which agrees with the
count. A teammate's page shows the shared view and moves its count too."""

import re

import pytest
from playwright.sync_api import expect

from communications.access import access_conversation_by_id
from communications.services.conversations import update_conversation
from tests import factories

from .conftest import login
from .test_inbox_browser import off_the_loop, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice")
    carol = factories.UserFactory(username="carol", first_name="Carol")
    team.members.add(alice, carol)
    for n in range(3):
        say(channel, f"Customer {n} says hi", sender=f"c{n}", name=f"Customer {n}")
    return channel, alice, carol


def view_count(page, name: str):
    return page.locator(".saved-view", has_text=name).locator(".saved-view-count")


def test_a_saved_views_count_moves_live_and_its_list_agrees(
    live_server_url, chromium, inbox, screenshot
):
    channel, alice, carol = inbox
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    expect(page.locator("#conversations .row")).to_have_count(3)

    # filters: open and unread, then "Save view…" shared with the team
    page.locator(".chip[data-status=open]").click()
    page.locator("#filters input[name=unread]").check()
    expect(page).to_have_url(re.compile(r"status=open.*unread=1|unread=1.*status=open"))
    page.get_by_role("button", name="Save view…").click()
    dialog = page.locator("#view-dialog")
    dialog.get_by_label("View name").fill("Open unread")
    dialog.get_by_label("Who sees it").select_option(label="Team Support")
    dialog.get_by_role("button", name="Save view").click()
    expect(dialog).to_be_hidden()
    expect(view_count(page, "Open unread")).to_have_text("3")
    expect(page.locator(".saved-view-link", has_text="Open unread")).to_have_attribute(
        "aria-current", "true"
    )

    page.wait_for_load_state("networkidle")  # the save's own requests are done
    # from here on the counts may only move by the events
    refetches = []

    def refuse(route):
        refetches.append(route.request.url)
        route.abort()

    context.route(re.compile(r".*/inbox/counts/.*"), refuse)
    other = chromium.new_context(viewport={"width": 1280, "height": 800})
    other.route(re.compile(r".*/inbox/counts/.*"), refuse)
    teammate = login(other, live_server_url, "carol")  # the shared view, on her page
    expect(view_count(teammate, "Open unread")).to_have_text("3")

    new = say(channel, "Is my desk on its way?", sender="dana", name="Dana")
    expect(view_count(page, "Open unread")).to_have_text("4")
    expect(view_count(teammate, "Open unread")).to_have_text("4")
    screenshot(page, "saved-view-count-after-new-message")

    # a conversation leaves the view: resolved elsewhere
    def resolve():
        from django.db import transaction

        with transaction.atomic():
            row = access_conversation_by_id(alice, new.message.conversation_id, for_update=True)
            update_conversation(row, changes={"status": "resolved"})

    off_the_loop(resolve)
    expect(view_count(page, "Open unread")).to_have_text("3")
    expect(view_count(teammate, "Open unread")).to_have_text("3")
    # none of it was fetched (checked here: the 15-second safety net may refetch later on)
    assert refetches == []
    context.unroute(re.compile(r".*/inbox/counts/.*"))
    other.unroute(re.compile(r".*/inbox/counts/.*"))

    # another filter, then the view again: its filters in the URL, the list agrees with it
    page.locator(".chip[data-status=resolved]").click()
    expect(page.locator("#conversations .row")).to_have_count(1)
    expect(page.locator(".saved-view-link", has_text="Open unread")).to_have_attribute(
        "aria-current", "false"
    )
    page.locator(".saved-view-link", has_text="Open unread").click()
    expect(page).to_have_url(re.compile(r"\?status=open&unread=1"))
    expect(page.locator("#conversations .row")).to_have_count(3)
    expect(page.locator("#filters input[name=unread]")).to_be_checked()
    screenshot(page, "saved-view-applied")

    # the owner renames it: the teammate's sidebar follows (views.changed to the team)
    def rename():
        from communications.saved_views import services

        view = services.views_for(alice).get(name="Open unread")
        services.update_view(alice, view, {"name": "Waiting on us"})

    off_the_loop(rename)
    expect(teammate.locator(".saved-view", has_text="Waiting on us")).to_be_visible()
    expect(page.locator(".saved-view", has_text="Waiting on us")).to_be_visible()
    other.close()
    context.close()
