"""A contact's picture (R12) in real Chromium: initials first, then the picture the background
refresh stored, live, in the list row, the thread header and the customer's card."""

import re

import pytest
from playwright.sync_api import expect

from communications.models import ContactIdentity
from communications.providers import Profile
from communications.services import profiles
from tests import factories

from .conftest import login, png_bytes
from .test_inbox_browser import off_the_loop, open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_avatar_replaces_the_initials_live_and_after_a_reload(
    serve_with, chromium, settings, tmp_path, screenshot
):
    settings.MEDIA_ROOT = tmp_path  # the server's MEDIA_ROOT (serve_with): one folder
    base_url = serve_with()
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    team.members.add(factories.UserFactory(username="alice", first_name="Alice"))
    conversation = say(channel, "Hi there", sender="dana", name="Dana Scully").message.conversation

    page = login(chromium.new_context(viewport={"width": 1440, "height": 900}), base_url, "alice")
    row = page.locator(f'#conversations .row[data-id="{conversation.pk}"]')
    expect(row.locator(".avatar")).to_have_text("DS")
    expect(row.locator(".avatar img")).to_have_count(0)
    open_conversation(page, conversation)

    # The worker stores the platform's picture: the open page swaps it in without a reload.
    identity = ContactIdentity.objects.get(channel=channel, external_id="dana")
    off_the_loop(
        lambda: profiles.store_profile(
            identity.pk, Profile(avatar=png_bytes(300, 200), avatar_content_type="image/png")
        )
    )
    contact_id = conversation.contact_id
    served = re.compile(rf"^/media/avatars/{contact_id}/{contact_id}-[0-9a-f]{{20}}\.png$")
    for where in (row, page.locator("#thread-header"), page.locator("#card .card-head")):
        picture = where.locator(".avatar img")
        expect(picture).to_have_attribute("src", served)
        expect(picture).to_have_js_property("naturalWidth", 128)  # served, decoded
    screenshot(page, "avatar-live")

    page.reload()
    page.wait_for_selector("#live[data-state=live]")
    expect(row.locator(".avatar img")).to_have_js_property("naturalWidth", 128)
