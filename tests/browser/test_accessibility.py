"""Accessibility: axe-core (vendored for the tests only, tests/browser/vendor/) finds nothing
"serious" or "critical" on the main pages, and every control of the inbox can be reached with
the Tab key and shows where the focus is."""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.models import CustomAttributeDefinition
from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")


def axe_problems(page, *, exclude: list[str] | None = None) -> list[str]:
    """axe-core's violations at "serious" and above, one line each (rule, impact, nodes).
    Evaluated through the DevTools protocol: the page's CSP governs page scripts only."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    context = {"exclude": [[s] for s in exclude]} if exclude else None
    result = page.evaluate(
        """async (context) => {
          const r = await axe.run(context || document, {resultTypes: ["violations"]});
          return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + " :: " + n.failureSummary.split("\\n").slice(1, 3).join(" "))}));
        }""",
        context,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {json.dumps(v['nodes'][:5])}"
        for v in result
        if v["impact"] in BLOCKING
    ]


@pytest.fixture
def inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(
        username="alice", first_name="Alice", last_name="Ng", is_staff=True, is_superuser=True
    )
    team.members.add(alice)
    conversation = say(channel, "Hello, where is my desk?", sender="dana", name="Dana").message
    conversation = conversation.conversation
    factories.OrderFactory(contact=conversation.contact, number="SB-1042", title="Walnut desk")
    for n in range(3):
        say(channel, f"Customer {n} asks about delivery", sender=f"c{n}", name=f"Customer {n}")
    CustomAttributeDefinition.objects.create(key="points", name="Loyalty points", type="number")
    CustomAttributeDefinition.objects.create(
        key="tier", name="Tier", type="list", options=["Bronze", "Gold"], position=1
    )
    CustomAttributeDefinition.objects.create(key="since", name="Customer since", type="date")
    return conversation


def test_main_pages_have_no_serious_accessibility_problems(
    live_server_url, chromium, inbox, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    problems = {"login": axe_problems(page)}

    page = login(context, live_server_url, "alice")
    problems["inbox list"] = axe_problems(page)
    open_conversation(page, inbox)
    expect(page.locator("#messages .msg")).to_have_count(1)
    problems["inbox thread"] = axe_problems(page)
    page.click("#thread-header .assign-action")
    problems["inbox assign menu"] = axe_problems(page)
    page.keyboard.press("Escape")

    page.goto(f"{live_server_url}/integrations/whatsapp/connect/")
    expect(page.locator("h1")).to_have_text("Connect WhatsApp")
    problems["connect whatsapp"] = axe_problems(page)

    page.goto(f"{live_server_url}/reports/")
    expect(page.locator("svg#chart-conversations")).to_be_visible()
    problems["reports"] = axe_problems(page)
    page.locator("#report-managers summary").click()
    problems["reports table"] = axe_problems(page)
    # The contacts pages: the list, a search, a contact with typed attributes, and a refused
    # save (the error summary and the field's message).
    page.goto(f"{live_server_url}/contacts/")
    expect(page.locator("h1")).to_have_text("Contacts")
    problems["contacts"] = axe_problems(page)
    page.get_by_label("Search contacts").fill("Dana")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".contact-table tbody tr")).to_have_count(1)
    problems["contacts search"] = axe_problems(page)
    page.goto(f"{live_server_url}/contacts/{inbox.contact_id}/")
    page.get_by_label("Add a label").fill("vip")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".contact-label")).to_have_count(1)
    problems["contact"] = axe_problems(page)
    page.get_by_label("Loyalty points").fill("abc")
    page.get_by_role("button", name="Save attributes").click()
    expect(page.locator("#attr-points-error")).to_be_visible()
    problems["contact refused"] = axe_problems(page)

    page.goto(f"{live_server_url}/admin/")
    problems["admin index"] = axe_problems(page)

    page.goto(f"{live_server_url}/api/docs/")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    problems["api docs"] = axe_problems(page)
    failing = {name: found for name, found in problems.items() if found}
    assert failing == {}, "\n".join(f"{name}: {line}" for name, f in failing.items() for line in f)
    context.close()


# Where the focus is, and whether it shows: an outline, or a box-shadow ring the element does
# not have without the focus (a selected row's bar is no focus ring).
FOCUS = """() => {
  const node = document.activeElement;
  if (!node || node === document.body) return null;
  // a visually hidden file input shows its focus on its label
  const shows = node.matches("label > input.sr-only") ? node.parentElement : node;
  const look = () => {
    const style = getComputedStyle(shows);
    return {outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
            ring: style.boxShadow};
  };
  const focused = look();
  node.blur();
  const unfocused = look();
  node.focus({preventScroll: true});
  const label = node.getAttribute("aria-label") || node.textContent.trim().slice(0, 30)
    || (node.labels && node.labels[0] ? node.labels[0].textContent.trim() : "") || node.name || node.type;
  return {key: `${node.tagName.toLowerCase()}${node.className ? "." + [...node.classList].join(".") : ""} ${label}`,
          visible: focused.outline || focused.ring !== unfocused.ring,
          shown: shows.getBoundingClientRect().width > 0};
}"""


def test_every_inbox_control_is_reachable_by_keyboard_with_a_visible_focus(
    live_server_url, chromium, inbox, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    open_conversation(page, inbox)
    page.locator("body").focus()
    page.evaluate("document.activeElement.blur()")
    reached, invisible = [], []
    for _ in range(80):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus is None:
            continue
        if focus["key"] in reached:
            break  # round the page once
        reached.append(focus["key"])
        if not focus["visible"] or not focus["shown"]:
            invisible.append(focus["key"])
    screenshot(page, "keyboard-focus")
    expected = [
        r"input.*Search",
        r"button\.chip.*All",
        r"select.*Assignee",
        r"(?i)input.*unread",
        r"li\.row.*",
        r"button.*assign-action",
        r"button.*team-action",
        r"button.*snooze-action",
        r"button.*status-action",
        r"button.*Reply",
        r"textarea.*Message",
        r"button.*emoji-toggle",
        r"Attach files",
        r"button.*Send",
        r"a.* Sign out|button.*Sign out",
    ]
    for pattern in expected:
        assert any(re.search(pattern, key) for key in reached), f"{pattern} not in {reached}"
    assert invisible == []
    context.close()
