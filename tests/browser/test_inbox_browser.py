"""A manager works the inbox in real Chromium: live updates, replies, media, reconnects."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections, transaction
from django.utils import timezone
from playwright.sync_api import expect

from communications.models import Conversation, Message
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from tests import factories

from .conftest import login, png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIDEO = Path(__file__).parent / "fixtures" / "tiny.webm"


@pytest.fixture
def team_inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    outsider = factories.UserFactory(username="olga", first_name="Olga")
    team.members.add(alice, carol)
    factories.TeamFactory(name="Elsewhere").members.add(outsider)
    customer = say(channel, "Hello, I have a question about my order", sender="dana", name="Dana")
    contact = customer.message.conversation.contact
    contact.email = "dana@example.com"
    contact.save()
    factories.OrderFactory(contact=contact, number="SB-1042", title="Walnut desk", status="paid")
    factories.OrderFactory(
        contact=contact,
        number="SB-0977",
        title="Desk lamp",
        status="shipped",
        ordered_at=timezone.now() - timedelta(days=5),
    )
    for n in range(6):
        say(channel, f"Other customer {n} says hi", sender=f"other-{n}", name=f"Customer {n}")
    return {
        "channel": channel,
        "alice": alice,
        "carol": carol,
        "outsider": outsider,
        "conversation": customer.message.conversation,
    }


def say(channel, text: str, *, sender: str = "dana", name: str = "Dana"):
    """A customer's message through the one ingest path (in a thread: Playwright's sync API
    keeps an event loop in this one, where the after-commit broadcast cannot run)."""

    return off_the_loop(
        lambda: ingest_message(
            channel,
            InboundMessage(sender=InboundSender(external_id=sender, name=name), content=text),
        )
    )


def off_the_loop(work):
    """Run database work whose after-commit broadcast must reach the page in a thread of its
    own (this one holds Playwright's event loop); its connection is closed after."""

    def run():
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=30)


def reconnect_through_the_route(page):
    """Close the page's socket and wait for its next one (the one a route just installed
    sees): until then the badge may still say Live from the socket being closed."""
    page.evaluate("window.__closed = window.switchboard.realtime.socket; window.__closed.close()")
    page.wait_for_function("() => window.switchboard.realtime.socket !== window.__closed")


def open_conversation(page, conversation: Conversation):
    page.click(f'#conversations .row[data-id="{conversation.pk}"]')
    expect(page.locator("#thread-header .head-name")).to_have_text(conversation.contact.name)
    # the click fetches the thread again even when it is already open: wait for that copy
    expect(page.locator("#thread")).not_to_have_class(re.compile(r"\bloading\b"))


def test_manager_works_a_conversation_live(live_server_url, chromium, team_inbox, screenshot):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server_url}/inbox/")
    screenshot(page, "01-login")
    page.close()
    page = login(context, live_server_url, "alice")
    conversation = team_inbox["conversation"]

    rows = page.locator("#conversations .row")
    expect(rows).to_have_count(7)
    expect(page.locator(f'.row[data-id="{conversation.pk}"] .badge')).to_have_text("1")
    expect(page).to_have_title(re.compile(r"^\(7\) Inbox"))
    screenshot(page, "02-list")

    open_conversation(page, conversation)
    expect(page.locator("#messages .msg.in")).to_have_count(1)
    expect(page.locator("#card .order-number")).to_have_text(["SB-1042", "SB-0977"])
    expect(page.locator("#card")).to_contain_text("dana@example.com")
    # opening marks it read: the badge goes, and the title counts one unread fewer
    expect(page.locator(f'.row[data-id="{conversation.pk}"] .badge')).to_have_count(0)
    expect(page).to_have_title(re.compile(r"^\(6\) Inbox"))

    # an inbound message arrives through the ingest path: no reload
    say(
        team_inbox["channel"],
        "Is it shipped yet? <img src=x onerror=alert(1)> https://example.com/track/1.",
    )
    incoming = page.locator("#messages .msg.in").last
    expect(incoming).to_contain_text("Is it shipped yet? <img src=x onerror=alert(1)>")
    expect(incoming.locator("img")).to_have_count(0)  # escaped, not rendered
    expect(incoming.locator("a")).to_have_attribute("href", "https://example.com/track/1")
    expect(page.locator("#conversations .row").first).to_have_attribute(
        "data-id", str(conversation.pk)
    )

    # a reply: Enter sends, Shift+Enter breaks the line; pressing Enter twice sends once
    box = page.locator("#composer textarea")
    page.keyboard.press("r")
    expect(box).to_be_focused()
    box.type("Yes! It left today")
    box.press("Shift+Enter")
    box.type("Tracking follows 📦")
    box.press("Enter")
    box.press("Enter")
    reply = page.locator("#messages .msg.out", has_text="Yes! It left today")
    expect(reply).to_have_count(1)
    expect(reply).not_to_have_attribute("data-id", "")
    expect(reply.locator(".text")).to_have_text("Yes! It left today\nTracking follows 📦")
    assert Message.objects.filter(content__startswith="Yes! It left today").count() == 1

    # a private note
    page.click("[data-mode=note]")
    box.type("Customer is VIP, be nice")
    box.press("Enter")
    expect(page.locator("#messages .msg.note")).to_contain_text("Customer is VIP")
    page.click("[data-mode=text]")

    # an image and a video through the picker; the video plays through byte ranges
    ranges = []
    page.on(
        "response",
        lambda r: ranges.append(r.status) if "/media/a/" in r.url and r.status == 206 else None,
    )
    page.set_input_files(
        "#composer input[type=file]",
        files=[{"name": "desk.png", "mimeType": "image/png", "buffer": png_bytes()}],
    )
    image = page.locator("#messages img.media.image")
    expect(image).to_have_count(1)
    page.wait_for_function(
        "() => { const i = document.querySelector('#messages img.media.image');"
        " return i && i.complete && i.naturalWidth === 64; }"
    )
    page.set_input_files("#composer input[type=file]", files=[str(VIDEO)])
    video = page.locator("#messages video.media")
    expect(video).to_have_count(1)
    video.evaluate("v => { v.muted = true; v.play().catch(() => {}); }")
    page.wait_for_function(
        "() => { const v = document.querySelector('#messages video.media');"
        " return v && v.readyState >= 2; }"
    )
    assert ranges, "the video was not fetched with a Range request"
    page.locator("#messages").evaluate("box => box.scrollTop = box.scrollHeight")
    screenshot(page, "03-thread")

    image.click()
    expect(page.locator("#lightbox")).to_be_visible()
    screenshot(page, "04-lightbox")
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()

    # a file over the size limit is refused before upload, with a clear error
    page.evaluate("window.switchboard.composer.maxUploadBytes = 10")
    page.set_input_files(
        "#composer input[type=file]",
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 64}],
    )
    expect(page.locator(".composer-error")).to_contain_text("big.bin is 64 B")

    stored = Message.objects.filter(conversation=conversation, direction="out")
    assert sorted(stored.values_list("kind", flat=True)) == ["image", "note", "text", "video"]
    context.close()


def test_missed_messages_appear_after_a_reconnect(
    live_server_url, chromium, team_inbox, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    conversation = team_inbox["conversation"]
    open_conversation(page, conversation)

    # From now on the page's websocket goes through Playwright, which can refuse it.
    network = {"down": True}

    def route(ws):
        if network["down"]:
            ws.close(code=1011, reason="network down")
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/inbox/"), route)
    page.evaluate("window.switchboard.realtime.socket.close()")
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    say(team_inbox["channel"], "Sent while you were away (1)")
    say(team_inbox["channel"], "Sent while you were away (2)")
    say(team_inbox["channel"], "A new customer writes in", sender="erin", name="Erin New")
    page.wait_for_timeout(1500)  # reconnect attempts are refused meanwhile
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#messages")).not_to_contain_text("while you were away")
    screenshot(page, "05-reconnecting")

    network["down"] = False
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=15000)
    for n in (1, 2):
        expect(
            page.locator("#messages .msg.in", has_text=f"Sent while you were away ({n})")
        ).to_have_count(1)
    expect(page.locator("#conversations .row", has_text="Erin New")).to_have_count(1)
    expect(page.locator("#conversations .row").first).to_contain_text("Erin New")
    screenshot(page, "06-reconnected")
    context.close()


def test_a_restart_of_the_websocket_server_loses_nothing(
    serve_with, chromium, team_inbox, screenshot
):
    """A deploy restarts compose's `ws` service: uvicorn closes every socket (1012) on SIGTERM
    and exits; the page reconnects to the new process and replays what came meanwhile."""
    url = serve_with()
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, url, "alice")
    open_conversation(page, team_inbox["conversation"])
    expect(page.locator("#live")).to_have_attribute("data-state", "live")

    serve_with.stop(url)
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    say(team_inbox["channel"], "Sent during the restart (1)")
    say(team_inbox["channel"], "Sent during the restart (2)")
    serve_with(port=int(url.rsplit(":", 1)[1]))

    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=20000)
    for n in (1, 2):
        expect(
            page.locator("#messages .msg.in", has_text=f"Sent during the restart ({n})")
        ).to_have_count(1)
    screenshot(page, "06b-after-a-server-restart")
    context.close()


def test_a_second_manager_sees_status_changes_and_presence(
    live_server_url, chromium, team_inbox, screenshot
):
    conversation = team_inbox["conversation"]
    alice_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    carol_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    alice = login(alice_context, live_server_url, "alice")
    carol = login(carol_context, live_server_url, "carol")
    open_conversation(carol, conversation)
    open_conversation(alice, conversation)

    expect(carol.locator("#presence")).to_contain_text("Alice Ng is viewing")
    alice.locator("#composer textarea").type("Let me check")
    expect(carol.locator("#presence")).to_contain_text("Alice Ng is typing")

    alice.click("#thread-header .status-action")  # Resolve
    expect(carol.locator("#thread-header .head-status")).to_have_text("Resolved")
    expect(carol.locator("#thread-header .status-action")).to_have_text("Reopen")
    expect(carol.locator(f'.row[data-id="{conversation.pk}"] .tag.status-resolved')).to_be_visible()
    # assign with type-ahead: a few letters and Enter
    alice.click("#thread-header .assign-action")
    alice.fill("#thread-header .popover .typeahead-input", "car")
    alice.keyboard.press("Enter")
    expect(carol.locator("#thread-header .assign-action")).to_have_text("@ Carol Diaz")
    expect(carol.locator(f'.row[data-id="{conversation.pk}"] .tag.assignee')).to_have_text(
        "@ Carol Diaz"
    )
    screenshot(carol, "07-second-manager")
    # snooze until a time of her choosing: every viewer sees it
    alice.click("#thread-header .snooze-action")
    alice.fill("#thread-header .popover input[name=snoozed_until]", "2031-05-04T09:30")
    alice.click("#thread-header .popover .snooze-form button[type=submit]")
    expect(carol.locator("#thread-header .head-status")).to_contain_text("Snoozed until")
    expect(carol.locator("#thread-header .head-status")).to_contain_text("2031")
    conversation.refresh_from_db()
    assert conversation.status == "snoozed" and conversation.assignee_id == team_inbox["carol"].pk
    assert conversation.snoozed_until.year == 2031

    # a manager of another team sees none of it
    outsider_context = chromium.new_context()
    outsider = login(outsider_context, live_server_url, "olga")
    expect(outsider.locator("#conversations .row")).to_have_count(0)
    expect(outsider.locator(".list-empty")).to_be_visible()
    outsider_context.close()
    alice_context.close()
    carol_context.close()


def test_long_list_and_long_thread_load_on_scroll(
    live_server_url, chromium, team_inbox, screenshot
):
    channel, conversation = team_inbox["channel"], team_inbox["conversation"]
    for n in range(30):  # 37 conversations: more than the first page of 25
        factories.ConversationFactory(
            channel=channel, last_message_at=timezone.now() - timedelta(days=1, minutes=n)
        )
    start = timezone.now() - timedelta(hours=5)
    for n in range(120):  # older than the greeting: the thread opens on its newest 50
        factories.MessageFactory(
            conversation=conversation,
            content=f"history {n:03d}",
            created_at=start + timedelta(seconds=n),
        )
    broken = say(channel, "", sender="dana")  # an image whose file never arrived
    broken.message.attachments.create(filename="lost.jpg", mime_type="image/jpeg")

    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    rows = page.locator("#conversations .row")
    expect(rows).to_have_count(25)
    page.locator(".list-scroll").evaluate("box => box.scrollTop = box.scrollHeight")
    expect(rows).to_have_count(37)

    # the keyboard walks the list: down opens the first row, down again the second
    page.keyboard.press("ArrowDown")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    second_name = rows.nth(1).locator(".row-name").inner_text()
    expect(page.locator("#thread-header .head-name")).to_have_text(second_name)
    page.keyboard.press("ArrowUp")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")

    open_conversation(page, conversation)
    messages = page.locator("#messages .msg")
    expect(messages).to_have_count(50)
    # the image that cannot load became a download link
    expect(page.locator("#messages a.file", has_text="lost.jpg")).to_be_visible()
    expect(page.locator("#messages img.media")).to_have_count(0)

    # An older page that arrives after the thread was opened again belongs to the old copy:
    # it is dropped, and the fresh copy stays as it opened, at the bottom.
    held = []

    def hold(route):
        held.append(route)

    page.route("**/messages/?before=*", hold)
    page.locator("#messages").evaluate("box => box.scrollTop = 0")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "scrolling to the top did not ask for the older page"
    open_conversation(page, conversation)
    held[0].continue_()
    page.unroute("**/messages/?before=*", hold)
    expect(page.locator("#messages")).not_to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(1000)
    print(
        "DEBUG",
        messages.count(),
        page.locator("#messages").evaluate("b => [b.scrollTop, b.scrollHeight, b.clientHeight]"),
    )
    expect(messages).to_have_count(50)
    assert page.locator("#messages").evaluate(
        "box => box.scrollHeight - box.scrollTop - box.clientHeight < 80"
    ), "the reopened thread is no longer at its newest message"

    # history 072 is the oldest message loaded; scrolling up brings it to the top, and the
    # older page then goes in above it without moving it
    anchor = page.locator("#messages .msg", has_text="history 072")
    box_top = page.locator("#messages").bounding_box()["y"]
    page.locator("#messages").evaluate("box => box.scrollTop = 0")
    expect(messages).to_have_count(100)
    offset = anchor.bounding_box()["y"] - box_top
    assert 0 <= offset < 60, f"the thread jumped: history 072 is now {offset}px below the top"
    page.locator("#messages").evaluate("box => box.scrollTop = 0")
    expect(messages).to_have_count(122)
    expect(messages.first).to_contain_text("history 000")
    screenshot(page, "08-long-thread")
    context.close()


def test_failed_sends_show_the_reason_and_retry_once(
    live_server_url, chromium, team_inbox, screenshot
):
    conversation = team_inbox["conversation"]
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    open_conversation(page, conversation)

    # The first POST dies on the network: shown as failed with the reason, Retry sends the
    # same client id again, and exactly one message exists.
    posts = {"count": 0}

    def flaky(route):
        posts["count"] += 1
        if posts["count"] == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/conversations/\d+/messages/$"), flaky)
    box = page.locator("#composer textarea")
    box.type("This one hits a flaky network")
    box.press("Enter")
    failed = page.locator("#messages .msg.status-failed", has_text="flaky network")
    expect(failed.locator(".failure")).to_contain_text("network error")
    screenshot(page, "09-send-failed")
    failed.locator("button.retry").click()
    sent = page.locator("#messages .msg.out", has_text="flaky network")
    expect(sent).to_have_count(1)
    expect(sent).not_to_have_attribute("data-id", "")
    expect(sent.locator(".failure")).to_have_count(0)
    assert Message.objects.filter(content="This one hits a flaky network").count() == 1

    # The provider refuses it later: message.updated shows the reason; Retry queues it again.
    message = Message.objects.get(content="This one hits a flaky network")

    from communications.services.send import update_message_status

    off_the_loop(
        lambda: update_message_status(message.pk, "failed", reason="recipient blocked the number")
    )
    expect(sent.locator(".failure")).to_contain_text("recipient blocked the number")
    sent.locator("button.retry").click()
    expect(sent.locator(".failure")).to_have_count(0)
    expect(sent).to_have_count(1)
    message.refresh_from_db()
    assert message.status in ("pending", "sending", "sent")  # retried: the worker may hold it
    context.close()


def test_a_manager_taken_off_the_team_loses_the_open_inbox_at_once(
    live_server_url, chromium, team_inbox
):
    from django.db import transaction

    from communications import events

    channel, conversation, alice = (team_inbox[k] for k in ("channel", "conversation", "alice"))
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    open_conversation(page, conversation)
    expect(page.locator("#conversations .row")).to_have_count(7)

    def take_alice_off():
        with transaction.atomic():
            channel.teams.get().members.remove(alice)
            events.access_changed()  # what the admin's save does

    off_the_loop(take_alice_off)
    expect(page.locator("#conversations .row")).to_have_count(0)
    expect(page.locator("#thread")).to_have_class(re.compile(r"\bempty\b"))
    expect(page.locator("#messages .msg")).to_have_count(0)
    context.close()


def test_a_channel_that_cannot_send_yet_says_so_and_offers_notes_only(
    live_server_url, chromium, team_inbox, screenshot
):
    from communications.models import Channel

    team = team_inbox["channel"].teams.get()
    telegram = factories.ChannelFactory(name="Telegram bot", kind=Channel.Kind.TELEGRAM)
    telegram.teams.add(team)
    waiting = factories.ConversationFactory(channel=telegram, last_message_at=timezone.now())
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    notice = page.locator("#composer .composer-notice")
    reply_tab = page.locator('#composer [data-mode="text"]')

    open_conversation(page, waiting)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Telegram")
    expect(reply_tab).to_be_disabled()
    expect(page.locator("#composer")).to_have_class(re.compile(r"\bnote-mode\b"))
    screenshot(page, "09-reply-unavailable")
    page.locator("#composer textarea").fill("Customer asked about Telegram, will call back")
    page.keyboard.press("Enter")
    # the server's copy (stored, status sent) replaced the one shown at once
    expect(page.locator("#messages .msg.status-sent", has_text="will call back")).to_have_count(1)
    note = Message.objects.get(content__contains="will call back")
    assert (note.kind, note.status) == ("note", "sent")

    # a channel that sends: the reply box is back to replies
    open_conversation(page, team_inbox["conversation"])
    expect(notice).to_be_hidden()
    expect(reply_tab).to_be_enabled()
    expect(page.locator("#composer")).not_to_have_class(re.compile(r"\bnote-mode\b"))
    context.close()


def test_an_older_copy_arriving_late_never_takes_the_page_back(
    live_server_url, chromium, team_inbox
):
    """Two updates of one conversation; the websocket delivers the newer event first and the
    older one after it (as two web processes or a slow relay may). The page keeps the newer."""
    from communications.services.conversations import update_conversation

    conversation = team_inbox["conversation"]
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = login(context, live_server_url, "alice")
    open_conversation(page, conversation)
    held = []

    def older_after_newer(ws):
        server = ws.connect_to_server()

        def from_server(message):
            frame = json.loads(message) if isinstance(message, str) else {}
            # A batch frame (the page asks for `batch=1`) goes on as one frame per event.
            for event in frame if isinstance(frame, list) else [frame]:
                relay(json.dumps(event) if isinstance(frame, list) else message, event)

        def relay(message, event):
            data = event.get("data") or {}
            ours = event.get("type") == "conversation.updated" and data.get("id") == conversation.pk
            if ours and data["status"] == "pending":
                held.append(message)  # the older copy waits ...
                return
            ws.send(message)
            if ours and data["status"] == "resolved":
                for late in held:  # ... and arrives after the newer one
                    ws.send(late)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/ws/inbox/"), older_after_newer)
    reconnect_through_the_route(page)
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=15000)

    def change(status):
        with transaction.atomic():
            locked = Conversation.objects.select_for_update(of=("self",)).select_related(
                "contact", "channel", "assignee"
            )
            update_conversation(locked.get(pk=conversation.pk), changes={"status": status})

    off_the_loop(lambda: change("pending"))
    off_the_loop(lambda: change("resolved"))
    expect(page.locator("#thread-header .head-status")).to_have_text("Resolved")
    assert len(held) == 1
    late_id = json.loads(held[0])["id"]
    # The older copy reached the page after the newer one, and the page took it in ...
    page.wait_for_function(f"() => window.switchboard.realtime.applied.has({late_id})")
    # ... without going back.
    expect(page.locator("#thread-header .head-status")).to_have_text("Resolved")
    expect(page.locator(f'.row[data-id="{conversation.pk}"] .tag.status-resolved')).to_be_visible()
    context.close()


def test_a_tab_dropped_for_falling_behind_says_why_and_resumes(
    live_server_url, chromium, team_inbox
):
    """The server's side (the `closing` notice, the 4429 frame through uvicorn and daphne) is
    proven in tests/realtime/test_slow_client_servers.py; here the page gets exactly that and must say why,
    reconnect and resume what it missed."""
    from communications.consumers import CLOSE_TOO_SLOW, TOO_SLOW_REASON

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = login(context, live_server_url, "alice")
    conversation = team_inbox["conversation"]
    open_conversation(page, conversation)
    sockets, network = [], {"down": False}

    def route(ws):
        if network["down"]:
            ws.close(code=1011, reason="network down")
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/inbox/"), route)
    reconnect_through_the_route(page)
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=15000)

    network["down"] = True  # reconnects wait until we let them through
    closing = {"type": "closing", "code": CLOSE_TOO_SLOW, "reason": TOO_SLOW_REASON}
    sockets[-1].send(json.dumps(closing))
    sockets[-1].close(code=CLOSE_TOO_SLOW)  # as daphne does: the code without the reason
    expect(page.locator("#toasts")).to_contain_text(TOO_SLOW_REASON)
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#live")).to_have_attribute("title", f"Disconnected: {TOO_SLOW_REASON}")
    say(team_inbox["channel"], "Sent while the tab was cut off")

    network["down"] = False
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=15000)
    expect(
        page.locator("#messages .msg.in", has_text="Sent while the tab was cut off")
    ).to_have_count(1)
    context.close()


@pytest.fixture
def own_redis(tmp_path_factory):
    from tests.own_redis import running_redis

    yield from running_redis(tmp_path_factory.mktemp("redis"))


def test_the_page_is_not_live_while_its_server_cannot_hear_redis(
    serve_with, own_redis, chromium, team_inbox
):
    """The page's server process loses its Redis (restarted, empty): the page stops saying
    Live, and says it again only once the process hears its groups and has replayed."""
    base_url = serve_with(REDIS_URL=own_redis.url)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = login(context, base_url, "alice")
    open_conversation(page, team_inbox["conversation"])

    own_redis.kill()
    expect(page.locator("#live")).not_to_have_attribute("data-state", "live", timeout=15000)
    expect(page.locator("#live .live-text")).not_to_have_text("Live")
    say(team_inbox["channel"], "Sent while the server was deaf")  # stored; its broadcast lost
    page.wait_for_timeout(1000)
    expect(page.locator("#live")).not_to_have_attribute("data-state", "live")

    own_redis.start()
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=20000)
    expect(
        page.locator("#messages .msg.in", has_text="Sent while the server was deaf")
    ).to_have_count(1)
    context.close()
