# ruff: noqa: F811 - the Cloud API fixtures are imported, then named as test arguments
"""Inbound media that cannot be fetched never costs the message (Cloud API, fake Graph API).

The webhook's delivery is stored with a placeholder attachment ("failed to download"); the
download is retried automatically (tasks run eagerly in tests, so the backoff's countdown is
skipped) and on demand from the inbox; when it succeeds the attachment fills in and a
`message.updated` event tells the page.
"""

import pytest
from django.test import Client

from communications.models import Attachment, Message, RealtimeEvent
from communications.services import attachments
from tests import factories
from tests.whatsapp_cloud.conftest import (  # noqa: F401 - graph, wa_channel are fixtures
    fixture_bytes,
    graph,
    post_signed,
    wa_channel,
)

pytestmark = pytest.mark.django_db

MEDIA_ID = "1003383421387256"  # the image of image_message.json
JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes" * 10


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def events_for(message: Message, event_type: str) -> list[dict]:
    return [
        e.payload
        for e in RealtimeEvent.objects.filter(type=event_type).order_by("id")
        if e.payload.get("id") == message.pk
    ]


def test_graph_500_then_200_stores_a_placeholder_then_fills_it_in(
    client, wa_channel, graph, django_capture_on_commit_callbacks
):
    graph.media[MEDIA_ID] = (JPEG, "image/jpeg")
    graph.media_failures[MEDIA_ID] = [500]
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, wa_channel, fixture_bytes("image_message.json"))
    assert response.status_code == 200

    message = Message.objects.get()
    # The inbox first heard of the message with its placeholder...
    [created] = events_for(message, "message.created")
    assert created["attachments"][0]["download_state"] == "failed"
    assert created["attachments"][0]["download_error"] == "media lookup: HTTP 500"
    # ...then of the file, once the automatic retry got it.
    [updated] = events_for(message, "message.updated")
    assert updated["attachments"][0]["download_state"] == "stored"
    assert updated["attachments"][0]["download_error"] == ""
    attachment = Attachment.objects.get()
    assert attachment.download_state == Attachment.DownloadState.STORED
    assert attachment.download_attempts == 1 and attachment.size == len(JPEG)
    with attachment.file.open("rb") as stored:
        assert stored.read() == JPEG
    lookups = [r["path"] for r in graph.requests if r["path"].endswith(MEDIA_ID)]
    assert lookups == [f"/v21.0/{MEDIA_ID}", f"/v21.0/{MEDIA_ID}", f"/media-bytes/{MEDIA_ID}"]


def test_retry_from_the_inbox_after_the_automatic_attempts_are_spent(
    client, wa_channel, graph, django_capture_on_commit_callbacks
):
    graph.media_failures[MEDIA_ID] = [503] * (1 + attachments.MAX_AUTOMATIC_ATTEMPTS)
    graph.media[MEDIA_ID] = (JPEG, "image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, wa_channel, fixture_bytes("image_message.json"))
    attachment = Attachment.objects.get()
    assert attachment.download_state == Attachment.DownloadState.FAILED
    assert attachment.download_attempts == attachments.MAX_AUTOMATIC_ATTEMPTS
    assert attachment.download_error == "media lookup: HTTP 503"
    message = attachment.message
    assert Message.objects.count() == 1

    team = factories.TeamFactory()
    wa_channel.teams.add(team)
    manager = factories.UserFactory(username="wa-manager")
    team.members.add(manager)
    browser = Client()
    browser.force_login(manager)
    url = f"/inbox/attachments/{attachment.pk}/retry/"
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(url)
    assert response.status_code == 202, response.content
    attachment.refresh_from_db()
    assert attachment.download_state == Attachment.DownloadState.STORED
    assert attachment.file.read() == JPEG
    assert events_for(message, "message.updated")[-1]["attachments"][0]["download_state"] == (
        "stored"
    )
    # Stored: nothing left to retry. Someone who cannot see the channel: not found.
    assert browser.post(url).status_code == 409
    outsider = Client()
    outsider.force_login(factories.UserFactory(username="outsider"))
    assert outsider.post(url).status_code == 404


def test_a_failed_manual_retry_keeps_the_placeholder_and_says_why(
    client, wa_channel, graph, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, wa_channel, fixture_bytes("image_message.json"))
    attachment = Attachment.objects.get()
    assert attachment.download_error == "media lookup: HTTP 404"
    admin = factories.UserFactory(username="root", is_superuser=True, is_staff=True)
    browser = Client()
    browser.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.post(f"/inbox/attachments/{attachment.pk}/retry/").status_code == 202
    attachment.refresh_from_db()
    assert attachment.download_state == Attachment.DownloadState.FAILED
    # One more attempt, counted; a manual one does not restart the automatic series.
    assert attachment.download_attempts == attachments.MAX_AUTOMATIC_ATTEMPTS + 1
    assert Message.objects.count() == 1
