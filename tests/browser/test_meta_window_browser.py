"""Messenger's 24-hour window in the reply box: said before the manager types, and lifted as
soon as the customer writes again (the realtime update asks the server again)."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from communications.models import Channel
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from tests import factories

from .conftest import login
from .test_inbox_browser import off_the_loop, open_conversation


def test_the_closed_window_is_said_up_front_and_lifts_when_the_customer_writes(
    live_server_url, chromium, transactional_db, screenshot
):
    team = factories.TeamFactory(name="Support")
    team.members.add(factories.UserFactory(username="alice", first_name="Alice"))
    page_channel = factories.ChannelFactory(
        kind=Channel.Kind.MESSENGER,
        name="Facebook page",
        config={"page_id": "108456123456789"},
        secrets={"page_access_token": "t", "app_secret": "s", "verify_token": "v"},
    )
    page_channel.teams.add(team)
    customer = InboundSender(external_id="6543210987654321", name="Peter Chang")
    old = timezone.now() - timedelta(hours=30)
    off_the_loop(
        lambda: ingest_message(
            page_channel,
            InboundMessage(
                sender=customer, content="Is it in stock?", external_id="m_1", timestamp=old
            ),
        )
    )
    conversation = page_channel.conversations.get()

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    notice = page.locator("#composer .composer-notice")
    reply_tab = page.locator('#composer [data-mode="text"]')
    open_conversation(page, conversation)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("more than 24 hours ago")
    expect(reply_tab).to_be_disabled()
    screenshot(page, "meta-window-closed")

    off_the_loop(
        lambda: ingest_message(
            page_channel,
            InboundMessage(sender=customer, content="Hello again?", external_id="m_2"),
        )
    )
    expect(page.locator("#messages .msg", has_text="Hello again?")).to_have_count(1)
    expect(notice).to_be_hidden()
    expect(reply_tab).to_be_enabled()
    expect(page.locator("#composer")).not_to_have_class(re.compile(r"\bnote-mode\b"))
    context.close()
