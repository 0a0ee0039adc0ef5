"""A bridged contact's name and picture come from the ghost's Matrix profile (R12), in the
background: real Synapse, real media repository, the core's refresh task run eagerly after the
appservice push committed the message."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from communications.models import ContactIdentity, Conversation, Message
from communications.providers import TemporaryDeliveryError
from integrations.matrix import profiles as matrix_profiles
from integrations.matrix.client import MatrixUnavailable
from integrations.matrix.provider import MatrixProvider
from tests.matrix_harness.bridge_emulator import solid_png

from .conftest import connect_manager, whatsapp_channel
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15557654321"


def test_a_ghosts_display_name_and_avatar_become_the_contacts(stack, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    _, connection = connect_manager(stack, f"wa-profile-{time.monotonic_ns()}")
    picture = solid_png(200, 100, 90)
    stack.bridge.set_ghost_avatar(CUSTOMER, picture)
    room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Carla")
    first = stack.bridge.send_text(room, CUSTOMER, "hello")

    wait_until(lambda: Message.objects.filter(external_id=first).exists(), what="the message")
    contact = Conversation.objects.get(external_id=room).contact
    wait_until(lambda: type(contact).objects.get(pk=contact.pk).avatar, what="the avatar stored")
    contact.refresh_from_db()
    assert contact.name == "Carla"  # " (WA)" cleaned off, as the mapper does
    with Image.open(contact.avatar.path) as stored:
        assert (stored.format, stored.size) == ("PNG", (128, 128))
        assert stored.convert("RGB").getpixel((64, 64)) == (90, 90, 90)
    identity = ContactIdentity.objects.get(channel=whatsapp_channel(), external_id=room)
    assert identity.profile_refreshed_at is not None

    # The provider's own answer: the ghost's picture as the media repository gives it.
    profile = MatrixProvider(whatsapp_channel()).fetch_profile(identity)
    assert (profile.name, profile.avatar, profile.avatar_content_type) == (
        "Carla",
        picture,
        "image/png",
    )

    # Renamed on WhatsApp; a day later the next message brings the new name in.
    stack.bridge.ensure_ghost(CUSTOMER, name="Carla Gómez")
    ContactIdentity.objects.filter(pk=identity.pk).update(
        profile_refreshed_at=timezone.now() - timedelta(hours=25)
    )
    second = stack.bridge.send_text(room, CUSTOMER, "it's me again")
    wait_until(lambda: Message.objects.filter(external_id=second).exists(), what="message 2")
    wait_until(
        lambda: type(contact).objects.get(pk=contact.pk).name == "Carla Gómez",
        what="the new name",
    )


def test_a_homeserver_that_is_down_is_a_temporary_failure(monkeypatch, db):
    from integrations.matrix.models import MatrixRoom
    from tests import factories

    class Config:
        configured = True

    monkeypatch.setattr(matrix_profiles, "get_config", lambda: Config())

    def unreachable(room_id, allow_lookup=True):
        raise MatrixUnavailable("homeserver unreachable: ConnectionError")

    monkeypatch.setattr(matrix_profiles, "room_for", unreachable)
    channel = factories.ChannelFactory(kind="whatsapp")
    contact = factories.ContactFactory()
    identity = ContactIdentity.objects.create(
        channel=channel, contact=contact, external_id="!room:example", username="@whatsapp_1:x"
    )
    with pytest.raises(TemporaryDeliveryError):
        matrix_profiles.fetch_profile(identity)
    assert MatrixRoom.objects.count() == 0


def test_a_portal_we_do_not_know_has_no_profile(monkeypatch, db):
    from tests import factories

    class Config:
        configured = True

    monkeypatch.setattr(matrix_profiles, "get_config", lambda: Config())
    monkeypatch.setattr(matrix_profiles, "room_for", lambda room_id, allow_lookup=True: None)
    identity = ContactIdentity.objects.create(
        channel=factories.ChannelFactory(kind="whatsapp"),
        contact=factories.ContactFactory(),
        external_id="!gone:example",
    )
    assert matrix_profiles.fetch_profile(identity) is None
