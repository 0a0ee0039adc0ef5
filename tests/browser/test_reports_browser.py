"""The reports page in Chromium: a team lead sees every plot drawn (SVG shapes carrying the
numbers), opens the table behind one, exports it as CSV and downloads the file."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from playwright.sync_api import expect

from communications.models import Message
from reports.rollups import local_today, rebuild_rollups
from tests import factories

from .conftest import login
from .test_csp_browser import violations, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    lead = factories.UserFactory(username="lead", first_name="Lena")
    team.members.add(lead)
    leads = Group.objects.create(name="Team leads")
    leads.permissions.add(Permission.objects.get(codename="view_reports"))
    leads.user_set.add(lead)
    now = timezone.now()
    for n in range(6):
        conversation = factories.ConversationFactory(channel=channel, team=team, assignee=lead)
        asked = now - timedelta(days=n % 3, minutes=30 + n)
        factories.MessageFactory(conversation=conversation, created_at=asked)
        factories.MessageFactory(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.SENT,
            sender_user=lead,
            created_at=asked + timedelta(minutes=3 * (n + 1)),
        )
    rebuild_rollups(local_today() - timedelta(days=3), local_today())
    return lead


def test_reports_page_draws_plots_and_exports_a_csv(live_server_url, chromium, history, screenshot):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    console = watch(context)
    page = login(context, live_server_url, "lead")
    page.click("a.toplink:has-text('Reports')")
    expect(page.locator("h1")).to_have_text("Reports")
    for name in ("conversations", "first_response", "resolution", "messages", "managers"):
        expect(page.locator(f"svg#chart-{name}")).to_be_visible()
    # The plots carry the numbers: six conversations opened, six first responses.
    opened = page.locator("#chart-conversations rect.bar.s0").evaluate_all(
        "(bars) => bars.reduce((sum, bar) => sum + Number(bar.dataset.value), 0)"
    )
    assert opened == 6
    responses = page.locator("#chart-first_response rect.bar").evaluate_all(
        "(bars) => bars.reduce((sum, bar) => sum + Number(bar.dataset.value), 0)"
    )
    assert responses == 6
    assert page.locator("#chart-busiest_hours rect.cell[data-value='0']").count() < 7 * 24
    expect(page.locator("#report-first_response .report-summary")).to_contain_text("Median")
    page.click("#report-messages summary")
    expect(page.locator("#report-messages table tbody tr")).to_have_count(1)
    expect(page.locator("#report-messages table tbody")).to_contain_text("Shop API")
    screenshot(page, "reports")

    page.click("#report-first_response .export-button")
    link = page.locator("#export-download")
    expect(link).to_be_visible()
    expect(page.locator("#export-text")).to_contain_text("Export ready")
    assert page.locator("#export-progress").evaluate("(bar) => bar.value === bar.max")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("first_response-")
    text = open(download.path(), encoding="utf-8").read()
    assert text.splitlines()[0] == "bin,from_seconds,to_seconds,conversations"
    assert "median (seconds)" in text
    assert violations(page, console) == []  # no inline style or script on the page
    context.close()
