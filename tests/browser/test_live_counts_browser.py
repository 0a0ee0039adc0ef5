"""The counts beside the filters move the moment a message arrives or a conversation changes,
from the events' own deltas: the page never asks for them (the 15-second safety-net refetch
is refused here, so any number it showed would be stale)."""

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
    team.members.add(alice)
    for n in range(3):
        say(channel, f"Customer {n} says hi", sender=f"c{n}", name=f"Customer {n}")
    return channel, alice


def count(page, name: str):
    return page.locator(f'[data-count="{name}"]').first


def test_counts_follow_live_events_without_a_refetch(live_server_url, chromium, inbox, screenshot):
    channel, alice = inbox
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    refetches = []

    def refuse(route):
        refetches.append(route.request.url)
        route.abort()

    context.route(re.compile(r".*/inbox/counts/.*"), refuse)
    page = login(context, live_server_url, "alice")
    expect(count(page, "all")).to_have_text("3")
    expect(count(page, "open")).to_have_text("3")
    expect(count(page, "unassigned")).to_have_text("3")
    expect(count(page, "mine")).to_have_text("0")
    expect(page).to_have_title(re.compile(r"^\(3\) Inbox"))

    # a new customer writes in through the ingest path: the row and every count at once
    new = say(channel, "Is my desk on its way?", sender="dana", name="Dana")
    expect(page.locator(f'.row[data-id="{new.message.conversation_id}"]')).to_be_visible()
    expect(count(page, "all")).to_have_text("4")
    expect(count(page, "open")).to_have_text("4")
    expect(count(page, "unassigned")).to_have_text("4")
    expect(count(page, "unread")).to_have_text("4")
    expect(page).to_have_title(re.compile(r"^\(4\) Inbox"))
    screenshot(page, "counts-live-after-new-message")

    # someone assigns it to Alice and another is resolved: Mine, Unassigned, Open, Resolved
    def assign_and_resolve():
        dana = access_conversation_by_id(alice, new.message.conversation_id, for_update=True)
        update_conversation(dana, changes={"assignee_id": alice.pk})
        other = channel.conversations.exclude(pk=dana.pk).order_by("id").first()
        other = access_conversation_by_id(alice, other.pk, for_update=True)
        update_conversation(other, changes={"status": "resolved"})

    off_the_loop(lambda: _atomic(assign_and_resolve))
    expect(count(page, "mine")).to_have_text("1")
    expect(count(page, "unassigned")).to_have_text("2")
    expect(count(page, "open")).to_have_text("3")
    expect(count(page, "resolved")).to_have_text("1")
    expect(count(page, "all")).to_have_text("4")
    screenshot(page, "counts-live-after-assign-and-resolve")
    assert refetches == []
    context.close()


def _atomic(work):
    from django.db import transaction

    with transaction.atomic():
        work()
