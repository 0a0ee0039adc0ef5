"""The thread header's actions are buttons (Resolve / Reopen, Snooze with presets, Assign and
Team with type-ahead), opening one never squeezes the customer's name, the emoji picker is a
real one served from our own files, and the Connect WhatsApp page has the inbox's header."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from communications.models import Conversation
from tests import factories

from .conftest import login
from .test_csp_browser import violations, watch
from .test_inbox_browser import open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZONE = "Asia/Tokyo"


def box(locator) -> dict:
    """Where an element is, read in one step (a header re-rendered by an event meanwhile is
    measured as it is now, never as a node just taken out)."""
    return locator.evaluate(
        "(node) => { const r = node.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }"
    )


def settled_box(page, locator) -> list:
    """The box once the header has stopped being redrawn (the read mark, the contact's picture
    arriving): two equal non-empty readings 300 ms apart."""
    previous = None
    for _ in range(20):
        current = box(locator)
        if current == previous and current[2] > 0:
            return current
        previous = current
        page.wait_for_timeout(300)
    return previous


@pytest.fixture
def inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    support, sales = factories.TeamFactory(name="Support"), factories.TeamFactory(name="Sales")
    channel.teams.add(support, sales)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    support.members.add(alice, carol)
    conversation = say(
        channel, "Hello, where is my desk?", sender="dana", name="Dana Whitfield-Longstreet"
    ).message.conversation
    return {"conversation": conversation, "carol": carol, "sales": sales}


def test_status_assignee_and_team_are_action_buttons(live_server_url, chromium, inbox, screenshot):
    conversation = inbox["conversation"]
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, timezone_id=ZONE)
    page = login(context, live_server_url, "alice")
    open_conversation(page, conversation)
    header = page.locator("#thread-header")
    expect(header.locator("select")).to_have_count(0)
    expect(header.locator(".status-action")).to_have_text("Resolve")
    screenshot(page, "header-actions")

    header.locator(".status-action").click()
    expect(header.locator(".status-action")).to_have_text("Reopen")
    expect(header.locator(".head-status")).to_have_text("Resolved")
    # the keyboard stays on the primary button across the re-render
    expect(header.locator(".status-action")).to_be_focused()
    header.locator(".status-action").click()
    expect(header.locator(".status-action")).to_have_text("Resolve")

    # assign by type-ahead with the keyboard: type, arrow, Enter
    header.locator(".assign-action").click()
    typeahead = header.locator(".popover .typeahead-input")
    expect(typeahead).to_be_focused()
    typeahead.type("a")  # Me (Alice Ng), Carol Diaz, Unassigned
    page.keyboard.press("ArrowDown")
    expect(header.locator('.popover [role=option][aria-selected="true"]')).to_have_text(
        "Carol Diaz"
    )
    page.keyboard.press("Enter")
    expect(header.locator(".assign-action")).to_have_text("@ Carol Diaz")
    expect(header.locator(".popover")).to_have_count(0)

    # the team, the same way
    header.locator(".team-action").click()
    header.locator(".popover .typeahead-input").fill("sal")
    page.keyboard.press("Enter")
    expect(header.locator(".team-action")).to_have_text("Team: Sales")

    # snooze with a preset: tomorrow 09:00 in the manager's time zone
    name_box = box(header.locator(".head-name"))
    header.locator(".snooze-action").click()
    menu = header.locator(".popover")
    expect(menu.locator("[data-preset]")).to_have_count(5)
    screenshot(page, "header-snooze-menu")
    # the menu floats: the customer's name keeps its width
    assert box(header.locator(".head-name")) == name_box
    menu.locator('[data-preset="Tomorrow morning"]').click()
    expect(header.locator(".head-status")).to_contain_text("Snoozed until")
    expect(header.locator(".status-action")).to_have_text("Reopen")

    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.status == "snoozed"
    assert stored.assignee_id == inbox["carol"].pk and stored.team_id == inbox["sales"].pk
    local = stored.snoozed_until.astimezone(ZoneInfo(ZONE))
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == (datetime.now(ZoneInfo(ZONE)) + timedelta(days=1)).date()

    # Escape closes a menu and gives the focus back to its button
    header.locator(".snooze-action").click()
    page.keyboard.press("Escape")
    expect(header.locator(".popover")).to_have_count(0)
    expect(header.locator(".snooze-action")).to_be_focused()
    context.close()


@pytest.mark.parametrize("size", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_opening_the_snooze_form_does_not_squeeze_the_name(
    live_server_url, chromium, inbox, size, screenshot
):
    context = chromium.new_context(viewport=size)
    page = login(context, live_server_url, "alice")
    open_conversation(page, inbox["conversation"])
    name = page.locator("#thread-header .head-name")
    expect(name).to_be_visible()
    before = settled_box(page, name)
    form = page.locator(".popover input[name=snoozed_until]")
    page.click("#thread-header .snooze-action")
    if not form.is_visible():  # a late re-render of the header (the read mark) closed it
        page.wait_for_timeout(500)
        if not form.is_visible():
            page.click("#thread-header .snooze-action")
    expect(form).to_be_visible()
    assert box(name) == before
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"snooze-form-{size['width']}")
    context.close()


def test_the_emoji_picker_is_served_from_our_own_files(
    live_server_url, chromium, inbox, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    console = watch(context)
    foreign = []
    context.on(
        "request",
        lambda r: foreign.append(r.url) if not r.url.startswith(live_server_url) else None,
    )
    page = login(context, live_server_url, "alice")
    open_conversation(page, inbox["conversation"])
    page.click(".emoji-toggle")
    picker = page.locator("emoji-picker")
    search = picker.locator("input#search")
    expect(search).to_be_focused()
    search.fill("thumbs up")
    first = picker.locator("#search-results [role=option]").first
    expect(first).to_be_visible()
    screenshot(page, "emoji-picker")
    first.click()
    expect(page.locator("#composer textarea")).to_have_value(re.compile("👍"))
    assert foreign == []
    assert violations(page, console) == []
    context.close()


def test_connect_whatsapp_has_the_inbox_header(live_server_url, chromium, inbox, screenshot):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")

    def header_links():
        # the links (the inbox adds its own buttons: mentions, notifications)
        return page.locator("header.topbar a").all_inner_texts()

    inbox_links = header_links()
    page.click("header.topbar a:has-text('WhatsApp')")
    page.wait_for_url(re.compile(r"/whatsapp/"))
    expect(page.locator("header.topbar .brand-name")).to_have_text("Switchboard")
    expect(page.locator("header.topbar .me")).to_have_text("Alice Ng")
    assert header_links() == [inbox_links[0], "Inbox", *inbox_links[1:]]
    expect(page.locator("header.topbar button", has_text="Sign out")).to_be_visible()
    screenshot(page, "connect-whatsapp-header")
    page.click("header.topbar a:has-text('Inbox')")
    page.wait_for_url(re.compile(r"/inbox/"))
    context.close()
