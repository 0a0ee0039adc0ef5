"""The pages run under the site-wide Content-Security-Policy without a single violation.

Chromium reports every refused inline script, style, handler or foreign source as a
`securitypolicyviolation` event and a console error; both are collected from the first
byte of each page (an init script, which the policy does not govern) and must stay empty.
"""

import re

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from communications.models import Attachment, Message
from tests import factories

from .conftest import LIVE_SERVER, login, png_bytes
from .test_inbox_browser import off_the_loop, open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def watch(context):
    console = []
    context.add_init_script(COLLECT_VIOLATIONS)

    def on_page(page):
        page.on(
            "console",
            lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
        )

    context.on("page", on_page)
    return console


def violations(page, console) -> list[str]:
    return page.evaluate("window.__cspViolations") + console


@pytest.fixture
def inbox_with_media(transactional_db, live_server_url, settings):
    settings.MEDIA_ROOT = LIVE_SERVER["media_root"]  # the photo is served by the live server
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(
        username="alice", first_name="Alice", is_staff=True, is_superuser=True
    )
    team.members.add(alice)
    first = say(channel, "Here is the photo", sender="dana", name="Dana")
    conversation = first.message.conversation

    def add_media():
        photo = factories.MessageFactory(conversation=conversation, channel=channel, kind="image")
        item = Attachment(message=photo, filename="desk.png", mime_type="image/png")
        item.file.save("desk.png", ContentFile(png_bytes()), save=True)
        lost = factories.MessageFactory(conversation=conversation, channel=channel, kind="image")
        Attachment.objects.create(
            message=lost,
            filename="receipt.jpg",
            mime_type="image/jpeg",
            download_state=Attachment.DownloadState.FAILED,
            download_error="media lookup: HTTP 500",
        )
        return lost

    lost = off_the_loop(add_media)
    return {"alice": alice, "conversation": conversation, "lost": lost}


def test_login_inbox_thread_and_api_docs_report_no_csp_violation(
    live_server_url, chromium, inbox_with_media, screenshot
):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    console = watch(context)
    page = login(context, live_server_url, "alice")  # the login page, then the inbox
    header = page.evaluate(
        "async () => (await fetch('/inbox/')).headers.get('content-security-policy')"
    )
    assert "script-src 'self'" in header and "unsafe-inline" not in header

    open_conversation(page, inbox_with_media["conversation"])
    expect(page.locator("#messages img.media.image")).to_have_count(1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#messages img.media.image')].every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.locator(".avatar").first).to_be_visible()
    # The placeholder of media that could not be fetched, with its retry button.
    placeholder = page.locator(".file.download-failed")
    expect(placeholder).to_contain_text("receipt.jpg")
    expect(placeholder).to_contain_text("couldn't download — retry")
    placeholder.get_by_role("button", name="Retry").click()
    # The attempt fails again (an API-channel attachment has nowhere to be fetched from):
    # the message.updated event re-renders the placeholder with the reason, button ready.
    expect(placeholder.locator(".file-size")).to_have_attribute(
        "title", "this attachment's media cannot be fetched again"
    )
    expect(placeholder.get_by_role("button", name="Retry")).to_be_enabled()
    lost = inbox_with_media["lost"]
    assert Attachment.objects.get(message=lost).download_attempts == 1
    screenshot(page, "csp-inbox")
    assert violations(page, console) == []

    page.goto(f"{live_server_url}/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    assert violations(page, console) == []
    page.goto(f"{live_server_url}/admin/communications/message/{lost.pk}/change/")
    expect(page.locator("#content h1")).to_be_visible()
    assert violations(page, console) == []
    page.goto(f"{live_server_url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Switchboard API")
    assert violations(page, console) == []
    assert Message.objects.filter(pk=lost.pk).exists()


def test_a_script_injected_into_the_page_is_refused(live_server_url, chromium, inbox_with_media):
    """The policy really is enforced: an inline script someone smuggled in does not run."""
    context = chromium.new_context()
    console = watch(context)
    page = login(context, live_server_url, "alice")
    page.evaluate(
        """() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.append(s); }"""
    )
    assert page.evaluate("window.__ran === undefined")
    assert any(re.search("script-src", v) for v in violations(page, console))
