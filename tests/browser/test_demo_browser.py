"""The demo's first screen shows what Switchboard does (issue 16, item 8): every channel kind,
every status, a photo, a PDF with its first-page preview, a failed send with the platform's
reason, an email with its headers. Screenshots go to test-artifacts/."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from communications.models import Channel, Conversation

from .conftest import LIVE_SERVER, login
from .test_inbox_browser import open_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IMAGE_LOADED = "(img) => img.complete && img.naturalWidth > 0"


def test_the_demo_shows_every_feature_populated(live_server_url, chromium, screenshot, settings):
    settings.MEDIA_ROOT = LIVE_SERVER["media_root"]  # the seeded files are served by the server
    call_command("seed_demo")
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "manager")
    rows = page.locator("#conversations .row")
    # the list hides archived rows (the demo's merged-away email conversation)
    expect(rows).to_have_count(Conversation.objects.filter(is_archived=False).count())
    for channel in Channel.objects.all():
        expect(page.locator("#conversations").get_by_text(channel.name).first).to_be_visible()
    screenshot(page, "demo-01-inbox")

    olena = Conversation.objects.get(contact__name="Olena Kovalenko")
    open_conversation(page, olena)
    photo = page.locator("#thread img").first
    expect(photo).to_be_visible()
    page.wait_for_function(IMAGE_LOADED, arg=photo.element_handle())
    expect(page.locator("#thread").get_by_text("PRIVATE NOTE", exact=False).first).to_be_visible()
    screenshot(page, "demo-02-photo-and-note")

    sophie = Conversation.objects.get(contact__name="Sophie Martin")
    open_conversation(page, sophie)
    preview = page.locator('#thread img[alt^="First page of invoice"]')
    expect(preview).to_be_visible()
    page.wait_for_function(IMAGE_LOADED, arg=preview.element_handle())
    screenshot(page, "demo-03-pdf-preview")

    diego = Conversation.objects.get(contact__name="Diego Fernández")
    open_conversation(page, diego)
    expect(
        page.locator("#thread").get_by_text("outside of allowed window", exact=False)
    ).to_be_visible()
    screenshot(page, "demo-04-failed-send")

    yusuf = Conversation.objects.get(contact__name="Yusuf Demir")
    open_conversation(page, yusuf)
    expect(page.locator("#thread").get_by_text("anna.demir@example.com").first).to_be_visible()
    screenshot(page, "demo-05-email")
    context.close()
