"""Web Push end to end against a local push service: what the worker sends is signed with our
VAPID key and decrypts, with the subscription's keys, to the notification; gone subscriptions
are deleted, failures retried; each manager's settings decide who is pushed at all."""

import json
import re
import time

import pytest
from py_vapid import Vapid02

from communications.models import Message
from communications.notifications import notify_mention, services, tasks
from communications.notifications.models import NotificationPreference, PushSubscription
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from tests import factories

from .conftest import b64url_decode

pytestmark = pytest.mark.django_db
Level = NotificationPreference.Level


def customer_writes(channel, text="Where is my walnut desk?", *, sender="dana", name="Dana"):
    return ingest_message(
        channel, InboundMessage(sender=InboundSender(external_id=sender, name=name), content=text)
    ).message


def chat(channel, assignee=None, sender="dana"):
    """An existing conversation of customer `sender`, assigned to `assignee`."""
    return factories.ConversationFactory(
        channel=channel,
        external_id=sender,
        assignee=assignee,
        contact=factories.ContactFactory(name="Dana Whitfield"),
    )


def pushes(push_service) -> list:
    return [request for request, _ in push_service.log]


def set_level(user, level, sound=False):
    NotificationPreference.objects.update_or_create(
        user=user, defaults={"level": level, "sound": sound}
    )


def test_an_inbound_message_is_pushed_signed_and_encrypted_for_its_assignee(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, _ = team_channel
    subscription, browser = subscribe(alice)
    conversation = chat(channel, assignee=alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = customer_writes(channel)
    # Nothing goes out in the request: the push is queued for after the commit.
    assert pushes(push_service) == []
    for callback in callbacks:
        callback()
    [request] = pushes(push_service)
    assert request.path == f"/push/{alice.username}-0"

    # VAPID (RFC 8292): "vapid t=<JWT>, k=<our public key>", signed by our private key.
    authorization = request.headers["Authorization"]
    scheme, params = authorization.split(" ", 1)
    assert scheme == "vapid"
    parts = dict(part.split("=", 1) for part in params.split(","))
    assert parts["k"] == vapid_keys[0]
    assert Vapid02.verify(authorization)
    claims = json.loads(b64url_decode(parts["t"].split(".")[1]))
    assert claims["aud"] == push_service.url_for("/").rstrip("/")
    assert claims["sub"] == "mailto:ops@switchboard.test"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600

    # RFC 8291/8188: an aes128gcm body only the browser's keys open.
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["TTL"] == "43200"
    assert request.headers["Urgency"] == "high"
    assert request.headers["Topic"] == f"c{conversation.pk}"
    assert b"walnut" not in request.get_data()
    assert browser.decrypt(request.get_data()) == {
        "type": "message",
        "title": "Dana Whitfield · Shop API",
        "body": "Where is my walnut desk?",
        "url": f"/inbox/#c{conversation.pk}",
        "tag": f"sb-c{conversation.pk}",
        "conversation_id": conversation.pk,
        "message_id": message.pk,
    }
    subscription.refresh_from_db()
    assert subscription.last_success_at is not None


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_calls_gone_is_deleted(
    vapid_keys, team_channel, subscribe, push_service, status, django_capture_on_commit_callbacks
):
    channel, alice, _ = team_channel
    push_service.clear_all_handlers()
    push_service.expect_request("/push/gone", method="POST").respond_with_data("", status=status)
    push_service.expect_request("/push/alive", method="POST").respond_with_data("", status=201)
    gone, _ = subscribe(alice, "gone")
    alive, _ = subscribe(alice, "alive")
    chat(channel, assignee=alice)
    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(channel)
    assert sorted(r.path for r in pushes(push_service)) == ["/push/alive", "/push/gone"]
    assert list(PushSubscription.objects.values_list("pk", flat=True)) == [alive.pk]


def test_other_failures_are_retried_a_few_times_then_given_up(
    vapid_keys, team_channel, subscribe, push_service, queued_retries, settings
):
    settings.WEBPUSH_MAX_ATTEMPTS = 3
    channel, alice, _ = team_channel
    push_service.clear_all_handlers()
    push_service.expect_request("/push/flaky", method="POST").respond_with_data("busy", status=503)
    subscription, browser = subscribe(alice, "flaky")
    conversation = chat(channel, assignee=alice)
    message = customer_writes(channel)
    queued = queued_retries

    assert tasks.push_inbound_messages([message.pk]) == 0
    [(args, options)] = queued
    assert args[0] == subscription.pk and args[3] == 2
    assert options["countdown"] == settings.WEBPUSH_RETRY_BASE_SECONDS
    subscription.refresh_from_db()
    assert subscription.last_failure.startswith("503")

    # The second attempt fails too and queues a third, later; the third is the last.
    assert tasks.retry_push(*args) == 0
    assert queued[1][0][3] == 3 and queued[1][1]["countdown"] == 2 * options["countdown"]
    assert tasks.retry_push(*queued[1][0]) == 0
    assert len(queued) == 2
    assert len(pushes(push_service)) == 3
    assert PushSubscription.objects.filter(pk=subscription.pk).exists()  # only 404/410 delete

    # When the service is back, a retry delivers the same payload.
    push_service.clear_all_handlers()
    push_service.expect_request("/push/flaky", method="POST").respond_with_data("", status=201)
    assert tasks.retry_push(*args) == 1
    assert browser.decrypt(pushes(push_service)[-1].get_data())["tag"] == f"sb-c{conversation.pk}"


def test_a_refusal_that_no_retry_fixes_is_not_retried(
    vapid_keys, team_channel, subscribe, push_service, queued_retries
):
    channel, alice, _ = team_channel
    push_service.clear_all_handlers()
    push_service.expect_request("/push/big", method="POST").respond_with_data("", status=413)
    subscription, _ = subscribe(alice, "big")
    chat(channel, assignee=alice)
    message = customer_writes(channel)
    assert tasks.push_inbound_messages([message.pk]) == 0
    assert queued_retries == []
    subscription.refresh_from_db()
    assert subscription.last_failure.startswith("413")


def test_settings_decide_who_is_pushed(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, bob = team_channel
    carol = factories.UserFactory(username="carol")  # level "all", but not in the team
    dave = factories.UserFactory(username="dave")  # in the team, default level ("mine")
    channel.teams.first().members.add(dave)
    set_level(bob, Level.ALL)
    set_level(carol, Level.ALL)
    for user in (alice, bob, carol, dave):
        subscribe(user, user.username)
    chat(channel, assignee=alice, sender="dana")
    chat(channel, assignee=None, sender="eve")

    def pushed_to(sender):
        push_service.clear_log()
        with django_capture_on_commit_callbacks(execute=True):
            customer_writes(channel, sender=sender)
        return sorted(r.path.rsplit("/", 1)[1] for r in pushes(push_service))

    # alice: "mine" (default) and assigned; bob: "all"; dave: "mine" but not his; carol: no access
    assert pushed_to("dana") == ["alice", "bob"]
    # an unassigned conversation: only "all"
    assert pushed_to("eve") == ["bob"]
    # "none": not even her own conversations
    set_level(alice, Level.NONE)
    set_level(bob, Level.MINE)
    assert pushed_to("dana") == []
    assert pushed_to("eve") == []


def test_who_is_pushed_is_read_in_two_queries_whatever_the_batch(
    vapid_keys, team_channel, subscribe, django_assert_num_queries
):
    channel, alice, bob = team_channel
    set_level(bob, Level.ALL)
    subscribe(alice)
    subscribe(bob)
    ids = []
    for n in range(12):
        chat(channel, assignee=alice if n % 2 else None, sender=f"c{n}")
        ids.append(customer_writes(channel, sender=f"c{n}").pk)
        ids.append(customer_writes(channel, "and another thing", sender=f"c{n}").pk)
    messages = list(Message.objects.filter(pk__in=ids).select_related("conversation", "channel"))
    with django_assert_num_queries(2):  # subscriptions with settings, team-channel links
        recipients = services.inbound_recipients(messages)
    # bob: all 12 chats; alice: her 6; one push per chat, saying how many arrived
    assert len(recipients) == 18
    assert {count for _, _, count in recipients} == {2}


def test_nothing_is_queued_without_vapid_keys(
    team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, _ = team_channel
    subscribe(alice)
    chat(channel, assignee=alice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        customer_writes(channel)
    assert pushes(push_service) == []
    assert not [c for c in callbacks if "push" in repr(c)]


def test_history_imports_and_our_own_messages_are_not_pushed(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, _ = team_channel
    subscribe(alice)
    chat(channel, assignee=alice)
    sender = InboundSender(external_id="dana", name="Dana")
    with django_capture_on_commit_callbacks(execute=True):
        ingest_message(channel, InboundMessage(sender=sender, content="old", historical=True))
        ingest_message(
            channel,
            InboundMessage(sender=sender, content="sent from the phone", direction="out"),
        )
    assert pushes(push_service) == []


# --- mentions (the mentions feature calls notify_mention) -----------------------------------


def note_by(author, conversation, text="@alice can you check the refund?"):
    return factories.MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        kind=Message.Kind.NOTE,
        status=Message.Status.SENT,
        content=text,
        sender_user=author,
        client_id=None,
    )


def test_notify_mention_pushes_to_the_mentioned_manager(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, bob = team_channel
    _, browser = subscribe(alice)
    subscribe(bob)
    conversation = chat(channel, assignee=bob)  # not alice's: a mention reaches her anyway
    note = note_by(bob, conversation)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert notify_mention(alice, note) is True
    assert pushes(push_service) == []  # after commit, by the worker
    for callback in callbacks:
        callback()
    [request] = pushes(push_service)
    assert request.path == "/push/alice-0"
    assert Vapid02.verify(request.headers["Authorization"])
    assert browser.decrypt(request.get_data()) == {
        "type": "mention",
        "title": "Bob mentioned you · Dana Whitfield",
        "body": "@alice can you check the refund?",
        "url": f"/inbox/#c{conversation.pk}",
        "tag": f"sb-m{note.pk}",
        "conversation_id": conversation.pk,
        "message_id": note.pk,
    }


def test_notify_mention_respects_settings_access_and_self_mentions(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    channel, alice, bob = team_channel
    outsider = factories.UserFactory(username="outsider")
    for user in (alice, bob, outsider):
        subscribe(user, user.username)
    note = note_by(bob, chat(channel))
    with django_capture_on_commit_callbacks(execute=True):
        set_level(alice, Level.NONE)
        assert notify_mention(alice, note) is False  # "none"
        assert notify_mention(bob, note) is False  # wrote it himself
        assert notify_mention(outsider, note) is False  # cannot see the conversation
    assert pushes(push_service) == []
    set_level(alice, Level.MINE)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_mention(alice, note) is True
    assert [r.path for r in pushes(push_service)] == ["/push/alice"]


def test_notify_mention_without_vapid_keys_does_nothing(team_channel, settings):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    channel, alice, bob = team_channel
    assert notify_mention(alice, note_by(bob, chat(channel))) is False


def test_an_endpoint_outside_the_push_services_is_never_called(
    vapid_keys, team_channel, push_service, settings
):
    channel, alice, _ = team_channel
    settings.WEBPUSH_ENDPOINT_HOSTS = ["fcm.googleapis.com"]  # the local one no longer allowed
    from .conftest import Browser, b64url

    browser = Browser.new()
    PushSubscription.objects.create(
        user=alice,
        endpoint=push_service.url_for("/push/internal"),
        p256dh=browser.p256dh,
        auth=b64url(browser.auth),
    )
    chat(channel, assignee=alice)
    assert tasks.push_inbound_messages([customer_writes(channel).pk]) == 0
    assert pushes(push_service) == []
    assert re.search("not a known push service", PushSubscription.objects.get().last_failure)


def test_a_note_mentioning_a_manager_pushes_to_them(
    vapid_keys, team_channel, subscribe, push_service, django_capture_on_commit_callbacks
):
    """The whole path: a note written through the send path names @alice → her device gets
    the mention push (services.mentions.on_mention → notify_mention → the worker)."""
    from communications.services.send import send_message

    channel, alice, bob = team_channel
    _, browser = subscribe(alice)
    conversation = chat(channel, assignee=bob)
    with django_capture_on_commit_callbacks(execute=True):
        note = send_message(
            conversation=conversation,
            user=bob,
            client_id="note-mention-1",
            content="@alice can you check the refund?",
            kind=Message.Kind.NOTE,
        ).message
    [request] = pushes(push_service)
    payload = browser.decrypt(request.get_data())
    assert (payload["type"], payload["message_id"]) == ("mention", note.pk)
