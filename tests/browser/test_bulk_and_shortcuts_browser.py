"""Bulk actions in the conversation list and the keyboard shortcuts, in real Chromium against the
server: rows selected by click and shift-click, changed through the bulk API, updated from its
answer and the realtime events; every shortcut does its one thing."""

import re

import pytest
from playwright.sync_api import expect

from communications.models import Conversation, ConversationLabel
from crm.models import Label
from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation, say
from .test_mobile_layout import OVERFLOWING

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    team.members.add(alice, carol)
    conversations = [
        say(channel, f"Question {n}", sender=f"c{n}", name=f"Customer {n}").message.conversation
        for n in range(5)
    ]
    vip = Label.objects.create(name="vip", color="#9333ea")
    # newest first, as the list shows them
    return {"alice": alice, "carol": carol, "conversations": conversations[::-1], "vip": vip}


def row(page, conversation):
    return page.locator(f'#conversations .row[data-id="{conversation.pk}"]')


def check(page, conversation, **options):
    row(page, conversation).locator(".row-check").click(**options)


def test_click_and_shift_click_select_three_rows_and_bulk_resolve(
    live_server_url, chromium, support, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    first, second, third, fourth, _ = support["conversations"]
    bar = page.locator("#bulk-bar")
    expect(bar).to_be_hidden()

    check(page, first)
    check(page, third, modifiers=["Shift"])  # the range: first, second, third
    expect(bar).to_be_visible()
    expect(bar.locator(".bulk-count")).to_have_text("3 selected")
    expect(page.locator("#bulk-status")).to_have_text("3 conversations selected")
    for conversation in (first, second, third):
        expect(row(page, conversation).locator(".row-check")).to_be_checked()
    expect(row(page, fourth).locator(".row-check")).not_to_be_checked()
    # selecting is not opening
    expect(page.locator("#thread")).to_have_class(re.compile(r"\bempty\b"))
    screenshot(page, "bulk-three-selected")

    bar.get_by_role("button", name="Resolve").click()
    for conversation in (first, second, third):
        expect(row(page, conversation).locator(".tag.status-resolved")).to_have_text("resolved")
    expect(row(page, fourth).locator(".tag.status-resolved")).to_have_count(0)
    expect(bar).to_be_hidden()
    expect(page.locator("#bulk-status")).to_have_text("Resolved: 3 conversations")
    statuses = dict(Conversation.objects.values_list("pk", "status"))
    assert [statuses[c.pk] for c in (first, second, third, fourth)] == [
        "resolved",
        "resolved",
        "resolved",
        "open",
    ]

    # in the "Open" filter, resolved rows leave the list; "select all" takes what is loaded
    page.locator(".chip[data-status=open]").click()
    expect(page.locator("#conversations .row")).to_have_count(2)
    page.locator("#select-all").click()
    expect(bar.locator(".bulk-count")).to_have_text("2 selected")
    expect(page.locator("#bulk-status")).to_have_text(
        "All 2 loaded conversations in this filter selected"
    )
    bar.get_by_role("button", name="Snooze").click()
    bar.get_by_role("button", name="In 1 hour").click()
    expect(page.locator("#conversations .row")).to_have_count(0)
    assert set(Conversation.objects.values_list("status", flat=True)) == {"resolved", "snoozed"}
    context.close()


def test_bulk_label_and_assign_with_the_type_ahead(live_server_url, chromium, support):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    first, second, *_ = support["conversations"]
    bar = page.locator("#bulk-bar")
    check(page, first)
    check(page, second)

    bar.get_by_role("button", name="Label").click()
    page.keyboard.type("vi")
    expect(bar.locator(".suggest-item").first).to_contain_text("vip")
    page.keyboard.press("Enter")
    for conversation in (first, second):
        expect(row(page, conversation).locator(".label-chip")).to_have_text(["vip"])
    links = ConversationLabel.objects.filter(label=support["vip"])
    assert sorted(links.values_list("conversation_id", flat=True)) == sorted([first.pk, second.pk])

    check(page, first)
    check(page, second)
    bar.get_by_role("button", name="Assign").click()
    page.keyboard.type("car")
    expect(bar.locator(".suggest-item").first).to_have_text("Carol Diaz")
    page.keyboard.press("Enter")
    for conversation in (first, second):
        expect(row(page, conversation).locator(".tag.assignee")).to_have_text("@ Carol Diaz")
    assignees = set(
        Conversation.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "assignee__username", flat=True
        )
    )
    assert assignees == {"carol"}
    context.close()


def test_bulk_hand_over_to_a_team_from_the_same_type_ahead(live_server_url, chromium, support):
    billing = factories.TeamFactory(name="Billing")
    support["conversations"][0].channel.teams.add(billing)
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    first, second, third, *_ = support["conversations"]
    bar = page.locator("#bulk-bar")
    check(page, first)
    check(page, second)
    bar.get_by_role("button", name="Assign").click()
    page.keyboard.type("bill")
    expect(bar.locator(".suggest-item").first).to_contain_text("Billing")
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-status")).to_have_text("Handed to Billing: 2 conversations")
    teams = dict(Conversation.objects.values_list("pk", "team__name"))
    assert (teams[first.pk], teams[second.pk], teams[third.pk]) == ("Billing", "Billing", None)
    context.close()


def test_a_refused_bulk_change_is_said_in_words_and_changes_nothing(
    live_server_url, chromium, support
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    first, second, *_ = support["conversations"]
    check(page, first)
    check(page, second)
    # the second conversation goes away behind the page's back: the server names it
    Conversation.objects.filter(pk=second.pk).delete()
    page.locator("#bulk-bar").get_by_role("button", name="Resolve").click()
    error = page.locator("#bulk-bar .bulk-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Could not resolve the selected conversations")
    expect(error).to_contain_text(f"not found: {second.pk}")
    expect(error).to_contain_text("Nothing was changed")
    assert not Conversation.objects.filter(status="resolved").exists()
    context.close()


def test_each_shortcut_does_its_thing_and_question_mark_lists_them(
    live_server_url, chromium, support, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    first, second, *_ = support["conversations"]
    header = page.locator("#thread-header .head-name")

    page.keyboard.press("j")
    expect(header).to_have_text(first.contact.name)
    page.keyboard.press("j")
    expect(header).to_have_text(second.contact.name)
    page.keyboard.press("k")
    expect(header).to_have_text(first.contact.name)
    page.keyboard.press("ArrowDown")
    expect(header).to_have_text(second.contact.name)
    expect(page.locator("#thread")).not_to_have_class(re.compile(r"\bloading\b"))

    # x toggles the current row's selection
    page.keyboard.press("x")
    expect(row(page, second).locator(".row-check")).to_be_checked()
    expect(page.locator("#bulk-bar .bulk-count")).to_have_text("1 selected")
    page.keyboard.press("x")
    expect(page.locator("#bulk-bar")).to_be_hidden()

    # a: assign the open conversation to me; e: resolve it
    page.keyboard.press("a")
    expect(page.locator("#thread-header .assign-action")).to_have_text("@ Alice Ng")
    expect(row(page, second).locator(".tag.assignee")).to_have_text("@ Alice Ng")
    page.keyboard.press("e")
    expect(page.locator("#thread-header .status-action")).to_have_attribute("data-action", "reopen")
    second.refresh_from_db()
    assert (second.status, second.assignee_id) == ("resolved", support["alice"].pk)

    # n: a private note, focused; r: the reply box
    page.keyboard.press("n")
    expect(page.locator("#composer [data-mode=note]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#composer textarea")).to_be_focused()
    page.keyboard.type("n is typed here, not a shortcut")
    expect(page.locator("#composer textarea")).to_have_value("n is typed here, not a shortcut")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    expect(page.locator("#composer [data-mode=text]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#composer textarea")).to_be_focused()
    page.keyboard.press("Escape")

    page.keyboard.press("/")
    expect(page.locator("#filters input[name=q]")).to_be_focused()
    page.keyboard.press("Escape")

    # ? lists them all; Esc closes it
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    for text in ("Next conversation", "Reply", "private note", "Resolve", "Assign", "Select"):
        expect(dialog).to_contain_text(text)
    expect(dialog.locator("kbd")).to_contain_text(["j", "↓", "k", "↑", "Enter", "r", "n", "e"])
    screenshot(page, "shortcuts-dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    context.close()


def test_enter_opens_the_current_row_on_a_phone(live_server_url, chromium, support):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = login(context, live_server_url, "alice")
    first = support["conversations"][0]
    page.keyboard.press("Enter")  # nothing open yet: the first row
    expect(page.locator(".panes")).to_have_attribute("data-pane", "thread")
    expect(page.locator("#thread-header .head-name")).to_have_text(first.contact.name)
    context.close()


def test_the_bulk_bar_fits_a_phone(live_server_url, chromium, support, screenshot):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = login(context, live_server_url, "alice")
    page.locator("#select-all").click()
    bar = page.locator("#bulk-bar")
    expect(bar.locator(".bulk-count")).to_have_text("5 selected")
    for panel in ("Assign", "Snooze"):
        bar.get_by_role("button", name=panel).click()
        assert page.evaluate(OVERFLOWING) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "bulk-bar-phone")
    bar.get_by_role("button", name="Clear the selection").click()
    expect(bar).to_be_hidden()
    expect(page.locator('#conversations .row-check[aria-checked="true"]')).to_have_count(0)
    context.close()


def test_opening_a_row_by_click_is_unchanged(live_server_url, chromium, support):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    open_conversation(page, support["conversations"][2])
    expect(page.locator("#bulk-bar")).to_be_hidden()
    context.close()
