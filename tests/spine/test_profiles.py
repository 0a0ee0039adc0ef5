"""Participant info (R12): names and pictures fetched in the background, never blocking ingest.

A fake provider with `fetch_profile` is registered for the API channel kind (restored after):
it counts its calls and answers, or fails, as each test says.
"""

import io
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client
from django.utils import timezone
from PIL import Image

from communications import events, providers
from communications.models import Channel, ContactIdentity, Conversation, Message, RealtimeEvent
from communications.providers import (
    PermanentDeliveryError,
    Profile,
    SendResult,
    TemporaryDeliveryError,
    register_provider,
)
from communications.services import profiles
from communications.services.ingest import (
    InboundMessage,
    InboundSender,
    ingest_message,
    ingest_messages,
)
from communications.tasks import refresh_profile
from crm.models import Contact
from tests import factories

from .test_ingest import _run_concurrently

pytestmark = pytest.mark.django_db


def png(width=300, height=200, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


class FakePlatform:
    """What the fake provider answers: a Profile, or an exception (one per call, then the
    last one again)."""

    def __init__(self):
        self.answers: list = [Profile(name="Ann Platform", username="ann_p", avatar=png())]
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def answer(self, identity):
        with self.lock:
            self.calls.append(identity.external_id)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def platform(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    fake = FakePlatform()

    class FakeProvider:
        kind = Channel.Kind.API
        resend_is_safe = False

        def __init__(self, channel):
            self.channel = channel

        def send(self, message):
            return SendResult(external_id=f"fake-{message.pk}")

        def fetch_profile(self, identity):
            return fake.answer(identity)

    before = providers._FACTORIES.get(Channel.Kind.API)
    register_provider(Channel.Kind.API, FakeProvider)
    _forget_refresh_keys()
    yield fake
    register_provider(Channel.Kind.API, before)
    _forget_refresh_keys()


def _forget_refresh_keys():
    """The keys live in the test's Redis and outlive a test (ids repeat across runs)."""
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=cache.make_key("switchboard:profile-refresh:*")))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


def inbound(sender="cust-1", text="Hello", **kwargs) -> InboundMessage:
    return InboundMessage(
        sender=InboundSender(external_id=sender, name="Ann"), content=text, **kwargs
    )


def ingest(channel, capture, item):
    with capture(execute=True):
        return ingest_message(channel, item)


def test_a_new_sender_gets_name_username_and_a_128px_avatar_in_the_background(
    channel, platform, django_capture_on_commit_callbacks
):
    result = ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    assert result.created and platform.calls == ["cust-1"]
    contact = Contact.objects.get()
    identity = ContactIdentity.objects.get()
    # The contact's name came from the platform before (ingest), so the newer one replaces it.
    assert (contact.name, contact.username) == ("Ann Platform", "ann_p")
    assert (identity.display_name, identity.username) == ("Ann Platform", "ann_p")
    assert identity.profile_refreshed_at is not None
    with Image.open(contact.avatar.path) as stored:
        assert (stored.format, stored.size) == ("PNG", (128, 128))
    # Open pages hear of it, on the channel of the contact's conversation.
    event = RealtimeEvent.objects.get(type=events.CONTACT_UPDATED)
    assert event.channel_id == channel.pk and event.conversation_id is None
    assert event.payload["avatar_url"] == f"/media/avatars/{contact.pk}/{contact.avatar.name[8:]}"
    assert event.payload["name"] == "Ann Platform"


def test_a_name_staff_typed_is_kept(channel, platform, django_capture_on_commit_callbacks):
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))
    Contact.objects.update(name="Ann (VIP, wholesale)")
    ContactIdentity.objects.update(profile_refreshed_at=timezone.now() - timedelta(hours=25))
    platform.answers = [Profile(name="Ann Renamed")]

    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-2"))

    assert len(platform.calls) == 2
    assert Contact.objects.get().name == "Ann (VIP, wholesale)"
    assert ContactIdentity.objects.get().display_name == "Ann Renamed"
    # Nothing the platform did not say is lost: the picture of the first refresh stays.
    assert Contact.objects.get().avatar


def test_the_profile_is_fetched_again_only_when_older_than_the_setting(
    channel, platform, settings, django_capture_on_commit_callbacks
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "PROFILE_REFRESH_HOURS": 6}
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))
    ContactIdentity.objects.update(profile_refreshed_at=timezone.now() - timedelta(hours=5))
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-2"))
    assert len(platform.calls) == 1

    ContactIdentity.objects.update(profile_refreshed_at=timezone.now() - timedelta(hours=7))
    platform.answers = [Profile(name="Ann Later", avatar=png(color=(0, 90, 200)))]
    old_avatar = Contact.objects.get().avatar
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-3"))

    assert len(platform.calls) == 2
    contact = Contact.objects.get()
    assert contact.name == "Ann Later"
    assert contact.avatar.name != old_avatar.name
    assert contact.avatar.storage.exists(contact.avatar.name)
    assert not old_avatar.storage.exists(old_avatar.name)  # the old picture is removed


def test_a_temporary_failure_is_retried_with_backoff(
    channel, platform, monkeypatch, django_capture_on_commit_callbacks
):
    platform.answers = [
        TemporaryDeliveryError("platform 503"),
        TemporaryDeliveryError("platform 503"),
        Profile(name="Ann Platform"),
    ]
    countdowns = []
    original = refresh_profile.apply_async

    def spy(args, kwargs=None, **options):
        countdowns.append(options.get("countdown"))
        return original(args, kwargs, **options)

    monkeypatch.setattr(refresh_profile, "apply_async", spy)

    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    assert len(platform.calls) == 3
    assert countdowns == [None, 30, 120]
    assert ContactIdentity.objects.get().display_name == "Ann Platform"


def test_a_platform_that_stays_down_is_given_up_for_now_and_the_message_stays(
    channel, platform, django_capture_on_commit_callbacks
):
    platform.answers = [TemporaryDeliveryError("platform 503")]

    result = ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    assert len(platform.calls) == profiles.MAX_ATTEMPTS
    assert Message.objects.get().pk == result.message.pk
    # Not marked as refreshed: the sender's next message (after the key's hour) asks again.
    assert ContactIdentity.objects.get().profile_refreshed_at is None


@pytest.mark.parametrize(
    "failure", [PermanentDeliveryError("no such user"), RuntimeError("bug in the provider")]
)
def test_a_permanent_failure_leaves_message_and_contact_intact(
    channel, platform, failure, django_capture_on_commit_callbacks
):
    platform.answers = [failure]

    result = ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    assert result.created and len(platform.calls) == 1
    message = Message.objects.get()
    assert (message.content, message.conversation.contact.name) == ("Hello", "Ann")
    contact = Contact.objects.get()
    assert (contact.name, contact.avatar.name) == ("Ann", "")
    assert not RealtimeEvent.objects.filter(type=events.CONTACT_UPDATED).exists()
    # Asked again only after the full age, not on every message.
    assert ContactIdentity.objects.get().profile_refreshed_at is not None
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-2"))
    assert len(platform.calls) == 1


@pytest.mark.parametrize(
    "avatar, content_type",
    [
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "image/svg+xml",
        ),
        (b"not an image at all", "image/png"),
        (png(), "text/html"),
        (b"\x89PNG" + b"0" * (profiles.AVATAR_MAX_BYTES + 1), "image/png"),
    ],
    ids=["svg", "garbage", "wrong-type", "too-large"],
)
def test_a_picture_we_do_not_take_is_refused_and_the_name_still_stored(
    channel, platform, avatar, content_type, django_capture_on_commit_callbacks
):
    platform.answers = [
        Profile(name="Ann Platform", avatar=avatar, avatar_content_type=content_type)
    ]

    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    contact = Contact.objects.get()
    assert (contact.name, contact.avatar.name) == ("Ann Platform", "")


def test_a_picture_of_generic_type_is_judged_by_its_bytes(
    channel, platform, django_capture_on_commit_callbacks
):
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(jpeg, format="JPEG")
    platform.answers = [
        Profile(name="Ann", avatar=jpeg.getvalue(), avatar_content_type="application/octet-stream")
    ]

    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="m-1"))

    with Image.open(Contact.objects.get().avatar.path) as stored:
        assert (stored.format, stored.size) == ("PNG", (128, 128))


def test_retries_never_wait_longer_than_the_brokers_visibility_timeout():
    assert [profiles.retry_delay(n) for n in range(5)] == [30, 120, 480, 600, 600]


def test_nothing_is_queued_for_channels_whose_provider_has_no_profiles(
    channel, django_capture_on_commit_callbacks
):
    # The API channel's own provider (no fetch_profile): not even a task.
    with django_capture_on_commit_callbacks() as callbacks:
        ingest_message(channel, inbound(external_id="m-1"))
    assert len(callbacks) == 1  # the realtime broadcast only
    assert ContactIdentity.objects.get().profile_refreshed_at is None


def test_whatsapp_cloud_keeps_its_webhook_names_and_breaks_nothing(
    settings, django_capture_on_commit_callbacks
):
    settings.WHATSAPP_MODE = "classical"
    channel = factories.ChannelFactory(kind=Channel.Kind.WHATSAPP)
    sender = InboundSender(external_id="4915112345678", name="Ben (from the webhook)")
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_message(channel, InboundMessage(sender=sender, content="hi"))
    assert result.created
    contact = Contact.objects.get()
    assert (contact.name, contact.avatar.name) == ("Ben (from the webhook)", "")
    # The Cloud API has no profile call: the task found nothing to ask and asks again tomorrow.
    assert ContactIdentity.objects.get().profile_refreshed_at is not None


def test_ingest_of_a_known_sender_costs_no_extra_query(
    channel, platform, count_queries, django_capture_on_commit_callbacks
):
    ingest(channel, django_capture_on_commit_callbacks, inbound(external_id="a"))
    assert len(platform.calls) == 1
    with count_queries() as queries, django_capture_on_commit_callbacks() as callbacks:
        ingest_message(channel, inbound(external_id="b"))
    # As without profiles (tests/spine/test_ingest.py): savepoint, identity, locked
    # conversation, dedup, insert message, update conversation, events, release savepoint.
    assert queries.count == 8, queries.explain()
    assert len(callbacks) == 1  # the broadcast; no refresh queued


def test_ingest_of_new_senders_costs_no_extra_query(channel, platform, count_queries):
    if connection.vendor != "postgresql":
        pytest.skip("the batch statements are PostgreSQL's")
    batch = [inbound(sender=f"new-{n % 5}", external_id=f"n-{n}") for n in range(20)]
    with count_queries() as queries:
        ingest_messages(channel, batch)
    assert queries.count == 11, queries.explain()  # as in test_ingest.py


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_first_messages_of_one_sender_fetch_the_profile_once(channel, platform):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL")
    answer = platform.answer

    def answer_once_all_are_stored(identity):
        # Tasks run eagerly here, in the thread whose commit queued them: the first fetch waits
        # until all 50 messages are stored, so every one of them saw the profile still missing.
        for _ in range(300):
            if Message.objects.count() == 50:
                break
            threading.Event().wait(0.1)
        return answer(identity)

    platform.answer = answer_once_all_are_stored

    results = _run_concurrently(
        # Each its own transaction, as separate server processes race.
        50,
        lambda i: ingest_messages(channel, [inbound(sender="new-customer", external_id=f"m-{i}")])[
            0
        ],
    )

    assert sum(r.created for r in results) == 50
    assert platform.calls == ["new-customer"]
    assert Contact.objects.get().avatar


# --- the picture is served to staff who may see the contact -----------------------------------


def _with_avatar(channel, platform, capture) -> Contact:
    ingest(channel, capture, inbound(external_id="m-1"))
    return Contact.objects.get()


def test_the_avatar_is_served_to_the_contacts_managers_only(
    channel, manager, platform, django_capture_on_commit_callbacks
):
    contact = _with_avatar(channel, platform, django_capture_on_commit_callbacks)
    url = f"/media/avatars/{contact.pk}/{contact.avatar.name.rsplit('/', 1)[1]}"

    browser = Client()
    browser.force_login(manager)
    response = browser.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=86400"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"

    # The API's contact and conversation point at our copy.
    conversation = Conversation.objects.get()
    detail = browser.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["contact"]["avatar_url"] == url
    rows = browser.get("/api/v1/conversations/").json()["results"]
    assert rows[0]["contact"]["avatar_url"] == url

    # Another team's manager, an anonymous visitor and an old picture's name: 404.
    other_team = factories.TeamFactory()
    factories.ChannelFactory().teams.add(other_team)
    other_team.members.add(outsider := factories.UserFactory(username="outsider"))
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert browser.get(f"/media/avatars/{contact.pk}/old-picture.png").status_code == 404
    assert browser.get(f"/media/avatars/{contact.pk + 999}/x.png").status_code == 404


def test_a_contact_without_a_stored_picture_keeps_the_platforms_url(channel, manager):
    contact = factories.ContactFactory(avatar_url="https://cdn.example.com/ann.jpg")
    factories.ConversationFactory(channel=channel, contact=contact)
    browser = Client()
    browser.force_login(manager)
    rows = browser.get("/api/v1/conversations/").json()["results"]
    assert rows[0]["contact"]["avatar_url"] == "https://cdn.example.com/ann.jpg"


def test_demo_data_has_customers_with_pictures(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    settings.MEDIA_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    with_pictures = Contact.objects.exclude(avatar="")
    assert with_pictures.count() == 4
    for contact in with_pictures:
        with Image.open(contact.avatar.path) as stored:
            assert stored.size == (128, 128)


# --- a batch of many senders takes its refresh keys in one round trip -------------------------


def test_a_batch_of_many_new_senders_fetches_each_profile_once(
    channel, platform, django_capture_on_commit_callbacks
):
    batch = [inbound(sender=f"many-{n % 12}", external_id=f"b-{n}") for n in range(30)]
    with django_capture_on_commit_callbacks(execute=True):
        ingest_messages(channel, batch)
    assert sorted(platform.calls) == sorted(f"many-{n}" for n in range(12))


def test_refresh_keys_are_taken_once_each(db):
    _forget_refresh_keys()
    keys = [f"switchboard:profile-refresh:test-{n}:0" for n in range(5)]
    assert profiles._take_keys(keys[:3]) == [True, True, True]
    assert profiles._take_keys(keys) == [False, False, False, True, True]
    assert profiles._take_keys(keys[:1]) == [False]  # one key: the plain cache.add
    _forget_refresh_keys()


def test_with_the_cache_down_the_batch_is_stored_and_no_refresh_queued(
    channel, platform, monkeypatch, django_capture_on_commit_callbacks
):
    def down(keys):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(profiles, "_take_keys", down)
    batch = [inbound(sender=f"down-{n}", external_id=f"d-{n}") for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        ingest_messages(channel, batch)
    assert Message.objects.count() == 3 and platform.calls == []
