"""A Telegram customer writes to the bot; the manager answers from the inbox in Chromium; the
(fake) Bot API receives the answer."""

import json

import pytest
import requests
from playwright.sync_api import expect

from communications.models import Channel, Message
from tests import factories
from tests.telegram.conftest import BOT_TOKEN, CHAT_ID, WEBHOOK_SECRET, fixture_json, ok

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_telegram_customer_writes_and_the_manager_answers(
    serve_with, chromium, httpserver, screenshot
):
    base = serve_with(TELEGRAM_API_BASE=httpserver.url_for("/").rstrip("/"))
    channel = Channel.objects.create(
        kind=Channel.Kind.TELEGRAM,
        name="Shop bot",
        secrets={"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    team.members.add(factories.UserFactory(username="alice", first_name="Alice"))
    httpserver.expect_request(f"/bot{BOT_TOKEN}/sendMessage", method="POST").respond_with_json(
        ok({"message_id": 501, "chat": {"id": CHAT_ID, "type": "private"}, "date": 1764930600})
    )

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, base, "alice")
    expect(page.locator("#conversations .row")).to_have_count(0)

    # Telegram delivers the customer's message to the webhook, with the secret.
    delivered = requests.post(
        f"{base}/webhooks/telegram/{channel.pk}/",
        data=json.dumps(fixture_json("text.json")),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
        },
        timeout=30,
    )
    assert delivered.status_code == 200, delivered.text
    row = page.locator("#conversations .row")
    expect(row).to_have_count(1)  # live, no reload
    expect(row).to_contain_text("Olga Petrova")
    row.click()
    expect(page.locator("#messages .msg.in")).to_contain_text("blue jacket back in stock?")

    box = page.locator("#composer textarea")
    box.fill("Yes! Size M and L are back.")
    box.press("Enter")
    expect(
        page.locator("#messages .msg.out.status-sent", has_text="Size M and L are back")
    ).to_have_count(1)
    screenshot(page, "telegram-answered")

    [(request, _)] = [e for e in httpserver.log if e[0].path.endswith("/sendMessage")]
    assert request.get_json() == {"chat_id": str(CHAT_ID), "text": "Yes! Size M and L are back."}
    reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
    assert reply.external_id == f"{CHAT_ID}:501"
    context.close()
