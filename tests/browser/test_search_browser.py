"""Search from the inbox in Chromium: type in the one box, click a message hit, the thread
opens around it (the page of messages around an old message), scrolled to it, highlighted."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def long_thread(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    manager = factories.UserFactory(username="alice", first_name="Alice")
    team.members.add(manager)
    contact = factories.ContactFactory(name="Dana Okafor", phone="+1 555-123-4567")
    conversation = factories.ConversationFactory(channel=channel, contact=contact)
    start = timezone.now() - timedelta(days=700)
    messages = [
        factories.MessageFactory(
            conversation=conversation,
            content=f"Filler line {i} about nothing in particular",
            created_at=start + timedelta(hours=i),
        )
        for i in range(200)
    ]
    target = messages[40]
    target.content = "The walnut desk I ordered arrived with a cracked leg"
    target.save()
    conversation.last_message_at = messages[-1].created_at
    conversation.save()
    # Another team's conversation with the same words: never shown.
    factories.MessageFactory(
        conversation=factories.ConversationFactory(), content="my walnut desk is cracked too"
    )
    return {"conversation": conversation, "target": target, "last": messages[-1]}


def test_search_box_opens_the_thread_at_the_hit(chromium, live_server_url, long_thread, screenshot):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = login(context, live_server_url, "alice")
    page.fill("input[name=q]", "cracked desks")
    hits = page.locator("#search-results .message-hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator("mark")).to_have_text(["desk", "cracked"])
    expect(page.locator(".list-scroll")).to_be_hidden()
    hits.first.click()

    target = page.locator(f'.msg[data-id="{long_thread["target"].pk}"]')
    expect(target).to_have_class(re.compile(r"(^|\s)hit-focus(\s|$)"))
    expect(target).to_be_in_viewport()
    screenshot(page, "search-hit-in-thread")
    # Only the page around the hit was loaded, not the newest one.
    expect(page.locator(f'.msg[data-id="{long_thread["last"].pk}"]')).to_have_count(0)
    count = page.locator(".msg").count()
    assert 0 < count <= 50
    # Scrolling down loads the newer pages until the newest message.
    for _ in range(10):
        page.locator("#messages").evaluate("box => box.scrollTop = box.scrollHeight")
        page.wait_for_timeout(200)
        if page.locator(f'.msg[data-id="{long_thread["last"].pk}"]').count():
            break
    expect(page.locator(f'.msg[data-id="{long_thread["last"].pk}"]')).to_have_count(1)

    # A phone number in another formatting finds the customer; clearing the box brings back the list.
    page.fill("input[name=q]", "5551234567")
    expect(page.locator('#search-results [data-group="contacts"] .search-hit')).to_have_count(1)
    page.fill("input[name=q]", "")
    expect(page.locator(".list-scroll")).to_be_visible()
    expect(page.locator("#search-results")).to_be_hidden()
    context.close()
