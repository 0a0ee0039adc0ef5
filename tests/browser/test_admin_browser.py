"""The admin as staff see it in Chromium: the conversation list fits a 1440 px screen (no
sideways scrolling, of the page or of the table), and the index dashboard shows webhook errors."""

import pytest
from playwright.sync_api import expect

from communications.models import WebhookDelivery
from tests import factories

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_data(transactional_db):
    team = factories.TeamFactory(name="Customer Support Europe")
    channel = factories.ChannelFactory(name="WhatsApp Business +44 20 7946 0958 (London shop)")
    channel.teams.add(team)
    boss = factories.UserFactory(
        username="boss",
        first_name="Alexandra",
        last_name="Montgomery-Fitzgerald",
        is_staff=True,
        is_superuser=True,
    )
    team.members.add(boss)
    for n in range(12):
        contact = factories.ContactFactory(
            name=f"Bartholomew Customer-Longname {n}", email=f"customer.longname.{n}@example.com"
        )
        factories.ConversationFactory(
            channel=channel,
            contact=contact,
            team=team,
            assignee=boss if n % 2 else None,
            unread_count=n,
            external_id=f"4915112345678{n:02d}@s.whatsapp.net",
        )
    WebhookDelivery.objects.create(
        channel=channel, source="api", body=b"x", verdict="malformed", outcome="skipped"
    )
    return boss


def test_conversation_changelist_fits_1440(live_server_url, chromium, admin_data, screenshot):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "boss")
    page.goto(f"{live_server_url}/admin/communications/conversation/")
    expect(page.locator("#result_list tbody tr")).to_have_count(12)
    widths = page.evaluate(
        """() => {
          const results = document.querySelector("#changelist .results");
          return {page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
                  table: results.scrollWidth, box: results.clientWidth};
        }"""
    )
    screenshot(page, "admin-conversations-1440")
    assert widths["page"] <= widths["view"], widths
    assert widths["table"] <= widths["box"], widths

    page.goto(f"{live_server_url}/admin/")
    tile = page.locator(".sb-tiles a", has_text="Rejected webhooks (24 h)")
    expect(tile.locator(".sb-count")).to_have_text("1")
    screenshot(page, "admin-dashboard")
    tile.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    context.close()
