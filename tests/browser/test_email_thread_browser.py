"""An email in the thread, as a manager sees it in Chromium: From/To/Cc/Subject, the quoted
reply folded away, the sender's formatting only on request in a sandboxed frame, and remote
images (tracking pixels) not loaded until the manager asks."""

import pytest
from playwright.sync_api import expect

from communications.models import Channel
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from integrations.email.devservers import SmtpServer
from integrations.email.models import EmailAccount, Security
from integrations.email.parse import parse_mail
from tests import factories

from .conftest import login
from .test_csp_browser import violations, watch
from .test_inbox_browser import off_the_loop, open_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIL = b"""From: Dana Customer <dana@example.com>
To: Support <support@shop.test>
Cc: Lee <lee@example.com>
Subject: Re: Order 1042
Message-ID: <reply-1@example.com>
In-Reply-To: <ours-1@shop.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset=utf-8

The parcel never came, can you check?

On Tue, 1 Dec 2026 at 10:00, Support <support@shop.test> wrote:
> Your order 1042 has shipped.
> Tracking: ZX-99
--b
Content-Type: text/html; charset=utf-8

<p>The parcel <b>never came</b>, can you check?</p><img src="https://tracker.example/pixel.gif" alt="">
<blockquote>Your order 1042 has shipped.</blockquote><script>alert(1)</script>
--b--
"""


@pytest.fixture
def email_inbox(transactional_db, live_server_url):
    channel = factories.ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice")
    team.members.add(alice)
    mail = parse_mail(MAIL.replace(b"\n", b"\r\n"))

    def store():
        return ingest_message(
            channel,
            InboundMessage(
                sender=InboundSender(
                    external_id=mail.sender_address,
                    name=mail.sender_name,
                    email=mail.sender_address,
                ),
                content=mail.text,
                external_id=mail.message_id,
                subject=mail.subject,
                metadata=mail.metadata(),
            ),
        )

    result = off_the_loop(store)
    return {"conversation": result.message.conversation, "channel": channel}


def test_email_shows_its_headers_folds_quotes_and_loads_images_only_on_request(
    live_server_url, chromium, email_inbox, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    console = watch(context)
    page = login(context, live_server_url, "alice")
    open_conversation(page, email_inbox["conversation"])
    message = page.locator(".msg.in").last
    head = message.locator(".email-head")
    expect(head).to_contain_text("Dana Customer <dana@example.com>")
    expect(head).to_contain_text("Lee <lee@example.com>")
    expect(head).to_contain_text("Re: Order 1042")
    expect(message.locator(".email > .text")).to_have_text("The parcel never came, can you check?")
    quote = message.locator(".email-quote")
    expect(quote.locator("summary")).to_have_text("Show quoted text")
    expect(quote.locator(".text")).to_be_hidden()
    quote.locator("summary").click()
    expect(quote.locator(".text")).to_contain_text("Tracking: ZX-99")

    message.get_by_role("button", name="Show original formatting").click()
    frame = message.locator("iframe.email-html")
    expect(frame).to_have_attribute("sandbox", "allow-same-origin")
    body = frame.content_frame.locator("body")
    expect(body.locator("b")).to_have_text("never came")
    assert body.locator("script").count() == 0  # sanitised when it arrived
    pixel = body.locator("img")
    assert pixel.get_attribute("src") is None  # nothing fetched from the sender's server
    assert pixel.get_attribute("data-src") == "https://tracker.example/pixel.gif"
    screenshot(page, "email-thread")
    message.get_by_role("button", name="Load remote images").click()
    expect(pixel).to_have_attribute("src", "https://tracker.example/pixel.gif")
    assert violations(page, console) == []


def test_the_reply_box_says_it_sends_an_email_and_the_manager_adds_a_cc(
    live_server_url, chromium, email_inbox, screenshot
):
    with SmtpServer() as smtp:
        EmailAccount.objects.create(
            channel=email_inbox["channel"],
            imap_host="127.0.0.1",
            imap_port=1,
            imap_security=Security.NONE,
            imap_user="unused",
            polling_enabled=False,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security=Security.NONE,
            from_address="support@shop.test",
            from_name="Shop Support",
        )
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        page = login(context, live_server_url, "alice")
        open_conversation(page, email_inbox["conversation"])
        fields = page.locator(".email-fields")
        expect(fields).to_contain_text("Sends an email")
        expect(fields.locator(".email-subject")).to_have_text("Re: Order 1042")
        expect(fields.get_by_label("To")).to_have_attribute(
            "placeholder", "dana@example.com (the customer)"
        )
        fields.get_by_label("Cc").fill("courier@example.net")
        page.locator("#composer textarea").fill("We asked the courier, you are in copy.")
        page.locator("#composer textarea").press("Enter")
        expect(page.locator(".msg.out .tick").last).to_have_text("✓", timeout=15000)
        screenshot(page, "email-reply")
        [sent] = smtp.messages
        assert sent["To"] == "dana@example.com" and sent["Cc"] == "courier@example.net"
        assert sent["Subject"] == "Re: Order 1042"
        assert sent["In-Reply-To"] == "<reply-1@example.com>"
