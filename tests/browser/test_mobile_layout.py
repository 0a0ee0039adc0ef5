"""The inbox on phone- and tablet-sized screens: one pane at a time with a way back, touch-sized
controls, nothing wider than the screen, a reply box above the keyboard. Desktop keeps three
panes. Screenshots go to test-artifacts/ (git-ignored)."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1440, "height": 900}

# Visible elements whose right edge passes the screen with no clipping ancestor: the page would
# scroll sideways (or show cut-off content).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (node) => {
    for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return up.getBoundingClientRect().right <= width + 0.5;
    }
    return false;
  };
  return [...document.querySelectorAll(".app *")].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.right > width + 0.5 && !clipped(node);
  }).map((node) => `${node.tagName}.${node.className} right=${node.getBoundingClientRect().right}`);
}"""

# Visible controls smaller than 44 × 44 px (a checkbox's target is its label).
SMALL_TARGETS = """(selector) => [...document.querySelectorAll(selector)].filter((node) => {
  const box = node.getBoundingClientRect();
  if (!box.width || !box.height || node.closest("label")) return false;
  return box.height < 44 || box.width < 44;
}).map((node) => `${node.tagName}.${node.className} "${node.textContent.trim().slice(0, 20)}" ${node.getBoundingClientRect().width}x${node.getBoundingClientRect().height}`)"""
CONTROLS = (
    ".{pane} button, .{pane} a[href], .{pane} select, .{pane} textarea,"
    " .{pane} input:not([type=hidden]), .{pane} label, .topbar button, .topbar a"
)


@pytest.fixture
def inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    team.members.add(alice)
    dana = say(
        channel, "Hello, where is my walnut desk? " * 3, sender="dana", name="Dana Whitfield"
    )
    conversation = dana.message.conversation
    factories.OrderFactory(
        contact=conversation.contact,
        number="SB-1042",
        title="Walnut desk",
        ordered_at=timezone.now(),
    )
    for n in range(5):
        say(
            channel, f"Customer {n} asks about delivery times", sender=f"c{n}", name=f"Customer {n}"
        )
    return conversation


def pane_box(page, selector):
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def assert_fits(page, pane: str):
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert page.evaluate(SMALL_TARGETS, CONTROLS.format(pane=pane)) == []


def assert_only_pane(page, shown: str):
    width = page.viewport_size["width"]
    for pane in ("list-pane", "thread-pane", "card-pane"):
        locator = page.locator(f".{pane}")
        if pane == shown:
            expect(locator).to_be_visible()
            box = pane_box(page, f".{pane}")
            assert (box["x"], box["width"]) == (0, width)
        else:
            expect(locator).to_be_hidden()


@pytest.mark.parametrize("size", [PHONE, TABLET], ids=["phone-390", "tablet-768"])
def test_narrow_screens_show_one_pane_at_a_time(live_server_url, chromium, inbox, screenshot, size):
    name = f"mobile-{size['width']}"
    context = chromium.new_context(viewport=size, is_mobile=True, has_touch=True)
    page = login(context, live_server_url, "alice")
    expect(page.locator("#conversations .row")).to_have_count(6)

    assert_only_pane(page, "list-pane")
    assert_fits(page, "list-pane")
    screenshot(page, f"{name}-1-list")

    open_conversation(page, inbox)
    assert_only_pane(page, "thread-pane")
    expect(page.locator("#messages .msg.in")).to_have_count(1)
    composer = pane_box(page, "#composer")
    assert composer["y"] + composer["height"] <= size["height"]
    assert_fits(page, "thread-pane")
    screenshot(page, f"{name}-2-thread")

    page.get_by_role("button", name="Customer").click()
    assert_only_pane(page, "card-pane")
    expect(page.locator("#card .order-number")).to_have_text(["SB-1042"])
    assert_fits(page, "card-pane")
    screenshot(page, f"{name}-3-customer")

    # back controls: card → thread → list
    page.get_by_role("button", name="Conversation", exact=False).first.click()
    assert_only_pane(page, "thread-pane")
    page.get_by_role("button", name="Conversations").click()
    assert_only_pane(page, "list-pane")
    # the phone's own back gesture returns to the list too
    open_conversation(page, inbox)
    assert_only_pane(page, "thread-pane")
    page.go_back()
    assert_only_pane(page, "list-pane")
    expect(page).to_have_url(f"{live_server_url}/inbox/#c{inbox.pk}")
    context.close()


def test_the_reply_box_stays_above_the_keyboard(live_server_url, chromium, inbox, screenshot):
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = login(context, live_server_url, "alice")
    open_conversation(page, inbox)
    page.locator("#composer textarea").tap()
    # The on-screen keyboard takes the lower part of the screen: the visible viewport shrinks.
    page.set_viewport_size({"width": 390, "height": 480})
    expect(page.locator("html")).to_have_attribute("style", "--viewport-height: 480px;")
    composer = pane_box(page, "#composer")
    assert composer["y"] + composer["height"] <= 480
    assert pane_box(page, "#messages")["height"] > 60
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollHeight") <= 480
    screenshot(page, "mobile-390-keyboard")
    context.close()


def test_desktop_keeps_three_panes_side_by_side(live_server_url, chromium, inbox, screenshot):
    context = chromium.new_context(viewport=DESKTOP)
    page = login(context, live_server_url, "alice")
    open_conversation(page, inbox)
    expect(page.locator("#card .order-number")).to_have_text(["SB-1042"])
    lst, thread, card = (pane_box(page, f".{p}") for p in ("list-pane", "thread-pane", "card-pane"))
    assert (lst["x"], lst["width"]) == (0, 360)
    assert (thread["x"], thread["width"]) == (360, 1440 - 360 - 300)
    assert (card["x"], card["width"]) == (1140, 300)
    assert lst["height"] == thread["height"] == card["height"] == 900 - 44
    expect(page.locator(".pane-nav").first).to_be_hidden()
    assert page.evaluate(OVERFLOWING) == []
    screenshot(page, "desktop-1440-three-panes")
    context.close()
