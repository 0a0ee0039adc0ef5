"""The contacts page in Chromium: find a customer from the top bar by a phone number written
another way, open them, see every conversation across channels, edit a typed attribute (a
number refuses "abc" with a message naming it), and the open thread's customer card shows
the new value live."""

import re

import pytest
from playwright.sync_api import expect

from crm.models import CustomAttributeDefinition
from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def customer(transactional_db):
    shop = factories.ChannelFactory(name="Shop API")
    mail = factories.ChannelFactory(name="Support mail", kind="email")
    team = factories.TeamFactory(name="Support")
    shop.teams.add(team)
    mail.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice")
    team.members.add(alice)
    dana = factories.ContactFactory(name="Dana Okafor", phone="+1 555-123-4567")
    chat = factories.ConversationFactory(
        channel=shop, contact=dana, last_message_preview="Where is my desk?"
    )
    email = factories.ConversationFactory(channel=mail, contact=dana, subject="Invoice for SB-1042")
    factories.ConversationFactory(channel=shop, contact__name="Someone Else")
    CustomAttributeDefinition.objects.create(key="points", name="Loyalty points", type="number")
    CustomAttributeDefinition.objects.create(
        key="tier", name="Tier", type="list", options=["Bronze", "Gold"], position=1
    )
    return {"contact": dana, "chat": chat, "email": email}


def test_search_open_edit_a_typed_attribute_and_the_thread_card_follows(
    live_server_url, chromium, customer, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    inbox = login(context, live_server_url, "alice")
    open_conversation(inbox, customer["chat"])
    expect(inbox.locator(".contact-page-link")).to_have_attribute(
        "href", f"/contacts/{customer['contact'].pk}/"
    )

    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{live_server_url}/inbox/")
    page.get_by_role("link", name="Contacts").click()
    expect(page.locator("h1")).to_have_text("Contacts")
    page.get_by_label("Search contacts").fill("15551234567")
    page.get_by_role("button", name="Search").click()
    results = page.locator(".contact-table tbody tr")
    expect(results).to_have_count(1)
    results.get_by_role("link", name="Dana Okafor").click()
    expect(page.locator("h1")).to_have_text("Dana Okafor")

    conversations = page.locator(".contact-conversation")
    expect(conversations).to_have_count(2)
    channels = sorted(conversations.locator(".conv-channel").all_inner_texts())
    assert channels == ["Shop API (api)", "Support mail (email)"]
    expect(
        page.locator(f'.contact-conversation a[href="/inbox/#c{customer["email"].pk}"]')
    ).to_contain_text("Invoice for SB-1042")

    points = page.get_by_label("Loyalty points")
    points.fill("abc")
    page.get_by_role("button", name="Save attributes").click()
    expect(page.locator("#attr-points-error")).to_have_text(
        "Loyalty points must be a number (like 42 or 3.5), not 'abc'"
    )
    expect(page.get_by_label("Loyalty points")).to_be_focused()
    screenshot(page, "contact-attribute-refused")

    page.get_by_label("Loyalty points").fill("1250")
    page.get_by_label("Tier").select_option("Gold")
    page.get_by_role("button", name="Save attributes").click()
    expect(page.locator(".flash")).to_have_text("Custom attributes saved.")
    expect(page.get_by_label("Loyalty points")).to_have_value("1250")
    screenshot(page, "contact-page")

    # The inbox tab, open on Dana's chat, hears contact.updated: the card shows the values.
    card = inbox.locator(".card-attributes")
    expect(card.locator('dd[data-attribute="points"]')).to_have_text("1250")
    expect(card.locator('dd[data-attribute="tier"]')).to_have_text("Gold")
    expect(inbox).to_have_url(re.compile(r"/inbox/"))
    context.close()
