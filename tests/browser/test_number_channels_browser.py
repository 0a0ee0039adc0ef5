"""Each connected WhatsApp number is its own channel: the inbox says which one a chat is on
("via +1 555 765 4321") in the list and the thread, and a disconnected number's chat is
read-only with the reason above the reply box (issue 10)."""

import re

import pytest
from playwright.sync_api import expect

from communications.models import Channel
from integrations.matrix.models import MatrixConnection, MatrixSettings, WhatsAppNumber
from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def number(user, phone: str, address: str, *, connected: bool) -> Channel:
    connection = MatrixConnection.objects.create(
        user=user,
        matrix_user_id=f"@switchboard_{user.pk}:hs.test",
        phone=phone,
        state="connected" if connected else "disconnected",
        secrets={"access_token": "token"},
    )
    channel = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP, name=f"WhatsApp {address} ({user.username})", address=address
    )
    WhatsAppNumber.objects.create(connection=connection, phone=phone, channel=channel)
    return channel


def test_the_inbox_shows_which_number_and_a_disconnected_one_is_read_only(
    live_server_url, chromium, screenshot
):
    MatrixSettings(whatsapp_mode="matrix").save()
    team = factories.TeamFactory(name="Sales")
    alice = factories.UserFactory(username="alice", first_name="Alice")
    bob = factories.UserFactory(username="bob", first_name="Bob")
    team.members.add(alice)
    ann_number = number(alice, "15557654321", "+1 555 765 4321", connected=True)
    bob_number = number(bob, "15550000002", "+1 555 000 0002", connected=False)
    for channel in (ann_number, bob_number):
        channel.teams.add(team)  # staff shared Bob's number with Alice's team
    carla = say(ann_number, "Hello from Carla", sender="!carla", name="Carla").message
    dieter = say(bob_number, "Hello from Dieter", sender="!dieter", name="Dieter").message

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    carla_row = page.locator(f'.row[data-id="{carla.conversation_id}"]')
    dieter_row = page.locator(f'.row[data-id="{dieter.conversation_id}"]')
    expect(carla_row.locator(".tag.channel")).to_have_text("via +1 555 765 4321")
    expect(dieter_row.locator(".tag.channel")).to_have_text("via +1 555 000 0002")

    open_conversation(page, carla.conversation)
    expect(page.locator("#thread .head-sub .tag.channel")).to_have_text("via +1 555 765 4321")
    expect(page.locator("#composer .composer-notice")).to_be_hidden()
    expect(page.locator('#composer [data-mode="text"]')).to_be_enabled()

    open_conversation(page, dieter.conversation)
    expect(page.locator("#thread .head-sub .tag.channel")).to_have_text("via +1 555 000 0002")
    notice = page.locator("#composer .composer-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(re.compile(r"\+1 555 000 0002 of bob is disconnected"))
    expect(notice).to_contain_text("read-only")
    expect(page.locator('#composer [data-mode="text"]')).to_be_disabled()
    expect(page.locator("#messages .msg.in")).to_have_text(re.compile("Hello from Dieter"))
    screenshot(page, "matrix-number-read-only")
