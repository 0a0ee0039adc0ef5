"""Notifications and the installable inbox in real Chromium: the service worker registers at
the root and controls the inbox, the manifest loads, the settings panel saves to the server,
desktop permission is asked only from its button, a message in the manager's conversation
notifies (and chimes) while the tab is hidden, and with the server gone the worker serves the
"Reconnecting…" shell. Screenshots go to test-artifacts/."""

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from communications import events
from communications.models import Message
from communications.notifications.models import NotificationPreference
from communications.serializers import message_payload
from tests import factories

from .conftest import login
from .test_inbox_browser import off_the_loop, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records what the page does with the platform's notification and audio APIs; `__hide()` makes
# the tab look hidden and unfocused, as when the manager is in another window.
SPY = """
window.__spy = { permissionRequests: 0, notifications: [], sounds: [] };
const realRequest = Notification.requestPermission.bind(Notification);
Notification.requestPermission = (...args) => { window.__spy.permissionRequests += 1; return realRequest(...args); };
const realShow = ServiceWorkerRegistration.prototype.showNotification;
ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
  window.__spy.notifications.push({ title, body: options.body, tag: options.tag });
  return realShow.call(this, title, options);
};
HTMLMediaElement.prototype.play = function () { window.__spy.sounds.push(this.src); return Promise.resolve(); };
window.__hide = () => {
  Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
  document.hasFocus = () => false;
};
"""


@pytest.fixture
def inbox(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    team.members.add(alice)
    say(channel, "Hello there", sender="dana", name="Dana Whitfield")
    return channel, alice


def worker_scope(page) -> str:
    return page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")


def test_service_worker_and_manifest_make_the_inbox_installable(
    chromium, live_server_url, inbox, screenshot
):
    context = chromium.new_context()
    page = login(context, live_server_url, "alice")
    assert worker_scope(page) == f"{live_server_url}/"
    manifest = page.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())"
    )
    assert manifest["start_url"] == "/inbox/" and manifest["display"] == "standalone"
    page.reload()
    page.wait_for_selector("#live[data-state=live]")
    # After a reload the worker controls the page: it is what answers when the server cannot.
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    screenshot(page, "pwa-inbox")
    context.close()


def test_the_settings_panel_saves_and_asks_for_permission_only_from_its_button(
    chromium, live_server_url, inbox, screenshot
):
    _, alice = inbox
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(SPY)
    page = login(context, live_server_url, "alice")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__spy.permissionRequests") == 0  # never on load

    page.click("#notify-toggle")
    panel = page.locator("#notify-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#notify-toggle")).to_have_attribute("aria-expanded", "true")
    expect(panel.locator("input[name=level][value=mine]")).to_be_checked()
    # No VAPID keys on this server: Web Push is offered as unavailable, in words.
    expect(panel.locator("[data-push-state]")).to_contain_text("Web Push is unavailable")
    expect(panel.locator("[data-action=push]")).to_be_hidden()

    panel.get_by_label("All new messages in my teams' conversations").check()
    expect(panel.locator("[data-saved]")).to_have_text("Saved")
    panel.get_by_label("Play a sound for new messages").check()
    expect(panel.locator("[data-saved]")).to_have_text("Saved")
    preference = NotificationPreference.objects.get(user=alice)
    assert (preference.level, preference.sound) == ("all", True)
    screenshot(page, "notification-settings")

    panel.get_by_role("button", name="Turn on desktop notifications").click()
    page.wait_for_function("() => window.__spy.permissionRequests === 1")

    page.reload()
    page.wait_for_selector("#live[data-state=live]")
    page.click("#notify-toggle")
    expect(page.locator("#notify-panel input[name=level][value=all]")).to_be_checked()
    expect(page.locator("#notify-panel input[name=sound]")).to_be_checked()
    page.keyboard.press("Escape")
    expect(page.locator("#notify-panel")).to_be_hidden()
    expect(page.locator("#notify-toggle")).to_be_focused()

    # On a phone the panel fits the screen and its controls are touch-sized.
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#notify-toggle")
    box = page.locator("#notify-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    for control in page.locator("#notify-panel button:visible").all():
        size = control.bounding_box()
        assert size["height"] >= 44 and size["width"] >= 44, control.text_content()
    screenshot(page, "notification-settings-phone")
    context.close()


def test_a_message_in_my_conversation_notifies_while_the_tab_is_hidden(
    chromium, live_server_url, inbox
):
    channel, alice = inbox
    NotificationPreference.objects.create(user=alice, level="mine", sound=True)
    conversation = say(channel, "Mine", sender="erin", name="Erin Mine").message.conversation
    conversation.assignee = alice
    conversation.save()
    context = chromium.new_context()
    context.grant_permissions(["notifications"], origin=live_server_url)
    context.add_init_script(SPY)
    page = login(context, live_server_url, "alice")
    worker_scope(page)
    page.evaluate("window.__hide()")

    say(channel, "Is anyone there?", sender="erin", name="Erin Mine")
    page.wait_for_function("() => window.__spy.notifications.length === 1")
    [notification] = page.evaluate("window.__spy.notifications")
    assert notification == {
        "title": "Erin Mine · Shop API",
        "body": "Is anyone there?",
        "tag": f"sb-c{conversation.pk}",
    }
    sounds = page.evaluate("window.__spy.sounds")
    assert len(sounds) == 1 and sounds[0].endswith("/pwa/sounds/new-message.wav")

    # Someone else's (unassigned) conversation: the row updates, nobody is notified.
    say(channel, "Unrelated question", sender="dana", name="Dana Whitfield")
    expect(page.locator("#conversations")).to_contain_text("Unrelated question")
    page.wait_for_timeout(300)
    assert len(page.evaluate("window.__spy.notifications")) == 1

    # A colleague mentions her in a note on that conversation: notified, under the mention's
    # tag (the one its Web Push carries). The note's metadata is the mentions feature's shape.
    bob = factories.UserFactory(username="bob", first_name="Bob")
    dana = conversation.channel.conversations.get(external_id="dana")
    note = off_the_loop(lambda: mention(dana, bob, alice))
    page.wait_for_function("() => window.__spy.notifications.length === 2")
    assert page.evaluate("window.__spy.notifications")[1] == {
        "title": "Bob mentioned you · Dana Whitfield · Shop API",
        "body": "@alice could you take this one?",
        "tag": f"sb-m{note.pk}",
    }
    context.close()


def mention(conversation, author, mentioned):
    with transaction.atomic():
        note = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            direction=Message.Direction.OUTBOUND,
            kind=Message.Kind.NOTE,
            status=Message.Status.SENT,
            content=f"@{mentioned.username} could you take this one?",
            sender_user=author,
            created_at=timezone.now(),
            metadata={
                "mentions": [
                    {"id": mentioned.pk, "username": mentioned.username, "name": "Alice Ng"}
                ]
            },
        )
        events.record_event(
            events.MESSAGE_CREATED,
            channel_id=conversation.channel_id,
            conversation_id=conversation.pk,
            payload=message_payload(note),
        )
    return note


def test_with_the_server_gone_the_worker_shows_the_reconnecting_shell(
    chromium, live_server_url, inbox, screenshot
):
    context = chromium.new_context()
    page = login(context, live_server_url, "alice")
    worker_scope(page)
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    try:
        page.reload()
        expect(page.locator("h1")).to_have_text("Reconnecting…")
        assert page.url.startswith(f"{live_server_url}/inbox/")
        screenshot(page, "pwa-offline-shell")
    finally:
        context.set_offline(False)
    # Back online: the shell loads the inbox again by itself (it retries with backoff).
    page.wait_for_selector("#live[data-state=live]", timeout=20000)
    context.close()


# The browser's push service is the one thing headless Chromium lacks: PushManager.subscribe
# is replaced by one that returns a subscription to the test's local push service, with keys
# the test holds. Everything else is real: permission, the page's subscribe call, the server
# storing it, the ingest path, the worker's push, and the encrypted body.
FAKE_PUSH_MANAGER = """
window.__subscribedWith = null;
PushManager.prototype.getSubscription = async function () { return null; };
PushManager.prototype.subscribe = async function (options) {
  const key = new Uint8Array(options.applicationServerKey);
  window.__subscribedWith = btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const fake = %s;
  return { endpoint: fake.endpoint, options, toJSON: () => fake, unsubscribe: async () => true };
};
"""


def test_turning_on_web_push_subscribes_and_an_assigned_message_arrives_encrypted(
    chromium, serve_with, inbox, settings, httpserver, screenshot
):
    import json
    import re

    from communications.notifications import push
    from communications.notifications.models import PushSubscription
    from tests.notifications.conftest import Browser

    channel, alice = inbox
    public, private = push.generate_keys()
    keys = {
        "VAPID_PUBLIC_KEY": public,
        "VAPID_PRIVATE_KEY": private,
        "VAPID_SUBJECT": "mailto:ops@switchboard.test",
        "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1,localhost",
    }
    for name, value in keys.items():  # the same for this process, where ingest runs
        setattr(settings, name, value.split(",") if name == "WEBPUSH_ENDPOINT_HOSTS" else value)
    url = serve_with(**keys)
    httpserver.expect_request(re.compile("^/push/"), method="POST").respond_with_data(
        "", status=201
    )
    device = Browser.new()
    fake = {"endpoint": httpserver.url_for("/push/alice-phone"), "expirationTime": None}
    fake["keys"] = device.keys()

    context = chromium.new_context()
    context.grant_permissions(["notifications"], origin=url)
    context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(fake))
    page = login(context, url, "alice")
    worker_scope(page)
    page.click("#notify-toggle")
    panel = page.locator("#notify-panel")
    expect(panel.locator("[data-push-state]")).to_have_text("Off for this device.")
    panel.get_by_role("button", name="Notify me when Switchboard is closed").click()
    expect(panel.locator("[data-saved]")).to_have_text("Web Push is on for this device")
    expect(panel.locator("[data-push-state]")).to_contain_text("On for this device")
    assert page.evaluate("window.__subscribedWith") == public
    screenshot(page, "notification-settings-push-on")
    subscription = PushSubscription.objects.get()
    assert (subscription.user, subscription.endpoint) == (alice, fake["endpoint"])
    context.close()

    conversation = channel.conversations.get(external_id="dana")
    conversation.assignee = alice
    conversation.save()
    say(channel, "Are you open on Sunday?", sender="dana", name="Dana Whitfield")
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"].startswith("vapid t=")
    payload = device.decrypt(request.get_data())
    assert payload["title"] == "Dana Whitfield · Shop API"
    assert payload["body"] == "Are you open on Sunday?"
