"""A Matrix image whose media the homeserver cannot give is kept, with a retryable placeholder.

Real Synapse: the ghost sends an `m.image` naming an mxc that does not exist on the media
repository (Synapse answers 404). Before, the mapper's MatrixError skipped the whole event
while Synapse's transaction was acknowledged: the customer's message was lost.
"""

import time

import pytest
from django.test import Client

from communications.models import Attachment, Message, RealtimeEvent
from communications.services import attachments
from integrations.matrix.models import MatrixRoom
from tests import factories
from tests.matrix_harness.bridge_emulator import solid_png

from .conftest import connect_manager, whatsapp_channel
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15551239876"


def test_an_image_whose_media_404s_is_stored_as_a_placeholder_and_retried(
    stack, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    user, connection = connect_manager(stack, f"wa-media-{time.monotonic_ns()}")
    room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Bea")
    wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), what="portal joined")
    missing = f"mxc://{stack.synapse.server_name}/NoSuchMedia{time.monotonic_ns()}"
    event_id = stack.bridge.send_event(
        room,
        CUSTOMER,
        "m.room.message",
        {
            "msgtype": "m.image",
            "body": "receipt.png",
            "url": missing,
            "info": {"mimetype": "image/png", "w": 8, "h": 8},
        },
    )
    after = stack.bridge.send_text(room, CUSTOMER, "did you get the photo?")

    wait_until(lambda: Message.objects.filter(external_id=after).exists(), what="the text after")
    message = Message.objects.get(external_id=event_id)  # not dropped
    assert message.kind == Message.Kind.IMAGE and message.direction == "in"
    attachment = Attachment.objects.get(message=message)
    assert attachment.provider_ref == missing and not attachment.file
    # The automatic retries ran (eagerly here) against Synapse and were refused each time.
    wait_until(
        lambda: (
            Attachment.objects.get(pk=attachment.pk).download_attempts
            == attachments.MAX_AUTOMATIC_ATTEMPTS
        ),
        what="the automatic attempts",
    )
    attachment.refresh_from_db()
    assert attachment.download_state == Attachment.DownloadState.FAILED
    assert "M_NOT_FOUND" in attachment.download_error
    created = RealtimeEvent.objects.get(type="message.created", payload__id=message.pk)
    assert created.payload["attachments"][0]["download_state"] == "failed"

    # The media shows up on the repository (the bridge re-uploads it): the retry button in the
    # inbox fetches it from Synapse and the placeholder fills in.
    png = solid_png(8, 8)
    Attachment.objects.filter(pk=attachment.pk).update(
        provider_ref=stack.bridge.upload(
            stack.bridge.ghost_mxid(CUSTOMER), png, "image/png", "r.png"
        )
    )
    whatsapp_channel().teams.add(team := factories.TeamFactory())
    team.members.add(user)
    browser = Client()
    browser.force_login(user)
    assert browser.post(f"/inbox/attachments/{attachment.pk}/retry/").status_code == 202
    attachment.refresh_from_db()
    assert attachment.download_state == Attachment.DownloadState.STORED
    assert attachment.file.read() == png
    updated = RealtimeEvent.objects.filter(type="message.updated", payload__id=message.pk)
    assert updated.order_by("-id").first().payload["attachments"][0]["download_state"] == "stored"
    assert Message.objects.filter(external_id=event_id).count() == 1
