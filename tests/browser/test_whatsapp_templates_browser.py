"""A WhatsApp Cloud conversation whose 24-hour window has closed: the reply box says so before
the manager types and offers the approved templates; the manager fills one in, sees it, sends
it, and the (fake) Graph API receives exactly that template (issue 12)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from communications.models import Channel, Conversation, Message
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from integrations.whatsapp_cloud.templates import sync_templates
from tests import factories
from tests.whatsapp_cloud.conftest import (
    ACCESS_TOKEN,
    BUSINESS_ACCOUNT_ID,
    PHONE_NUMBER_ID,
    fixture_bytes,
    sent_message,
)

from .conftest import login
from .test_inbox_browser import off_the_loop, open_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MESSAGES = f"/v21.0/{PHONE_NUMBER_ID}/messages"


def test_a_closed_window_conversation_is_answered_with_a_template(
    live_server_url, chromium, httpserver, screenshot
):
    from integrations.matrix import settings_cache

    # The live server reads the WhatsApp mode through the shared cache: an earlier test's
    # Matrix settings must not outlive their rows (the test database was flushed).
    settings_cache.invalidate()
    page1 = json.loads(fixture_bytes("templates_page1.json"))
    del page1["paging"]["next"]
    httpserver.expect_request(
        f"/v21.0/{BUSINESS_ACCOUNT_ID}/message_templates", method="GET"
    ).respond_with_json(page1)
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        sent_message("wamid.TEMPLATE-BROWSER")
    )
    channel = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Shop",
        config={
            "phone_number_id": PHONE_NUMBER_ID,
            "business_account_id": BUSINESS_ACCOUNT_ID,
            "graph_api_base": httpserver.url_for("/v21.0"),
        },
        secrets={"access_token": ACCESS_TOKEN, "app_secret": "s", "verify_token": "v"},
    )
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    team.members.add(factories.UserFactory(username="alice", first_name="Alice"))
    assert sync_templates(channel) == 2
    yesterday = timezone.now() - timedelta(hours=30)
    result = off_the_loop(
        lambda: ingest_message(
            channel,
            InboundMessage(
                sender=InboundSender(external_id="16505551234", name="Ann", phone="+16505551234"),
                content="Where is my parcel?",
                external_id="wamid.IN1",
                conversation_external_id="16505551234",
                timestamp=yesterday,
            ),
        )
    )
    conversation = result.message.conversation
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=yesterday)
    httpserver.clear_log()

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    open_conversation(page, conversation)
    notice = page.locator("#composer .composer-notice")
    expect(notice).to_contain_text("more than 24 hours ago")
    expect(notice).to_contain_text("Pick a template")
    expect(page.locator('#composer [data-mode="text"]')).to_be_disabled()

    picker = page.locator("#composer .template-picker")
    picker.locator("select").select_option(label="order_shipped (en_US)")
    send = picker.locator(".template-send")
    expect(send).to_be_disabled()  # every variable first
    preview = picker.locator(".template-preview")
    expect(preview).to_contain_text("Hi {{1}}, your parcel is on its way")
    for label, value in (
        ("Header {{1}}", "SB-1001"),
        ("Body {{1}}", "Ann"),
        ("Body {{2}}", "on Friday"),
        ("Link of “Track parcel”", "SB-1001"),
    ):
        picker.get_by_label(label, exact=True).fill(value)
    expect(preview).to_contain_text("Order SB-1001 has shipped")
    expect(preview).to_contain_text("Hi Ann, your parcel is on its way and arrives on Friday.")
    expect(preview).to_contain_text("[Track parcel] [Stop promotions]")
    screenshot(page, "whatsapp-template-picker")
    send.click()

    outbound = page.locator("#messages .msg.out")
    expect(outbound).to_have_count(1)
    expect(outbound).to_contain_text("Hi Ann, your parcel is on its way and arrives on Friday.")
    expect(outbound).to_have_class(lambda_status("sent"))
    screenshot(page, "whatsapp-template-sent")

    message = Message.objects.get(direction=Message.Direction.OUTBOUND)
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.TEMPLATE-BROWSER")
    [(request, _)] = httpserver.log
    body = json.loads(request.data)
    assert body["type"] == "template"
    assert body["template"]["name"] == "order_shipped"
    assert body["template"]["components"][1]["parameters"] == [
        {"type": "text", "text": "Ann"},
        {"type": "text", "text": "on Friday"},
    ]

    # The customer answers: the window is open again, the reply box offers free text at once.
    off_the_loop(
        lambda: ingest_message(
            channel,
            InboundMessage(
                sender=InboundSender(external_id="16505551234", name="Ann"),
                content="Thanks, see you Friday",
                external_id="wamid.IN2",
                conversation_external_id="16505551234",
                timestamp=timezone.now(),
            ),
        )
    )
    expect(page.locator('#composer [data-mode="text"]')).to_be_enabled()
    expect(notice).to_be_hidden()
    expect(picker).to_be_hidden()
    context.close()


def lambda_status(status: str):
    import re

    return re.compile(rf"\bstatus-{status}\b")
