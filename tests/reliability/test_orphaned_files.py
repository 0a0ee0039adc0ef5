"""A transaction that rolls back leaves no attachment file on disk.

The rollback is caused for real: a PostgreSQL trigger refuses the realtime events' INSERT,
the last statement of both the send and the ingest transaction, after the attachment rows
(and, before the fix, their files) were written.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.test import Client

from communications.models import Attachment, Message
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
)
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def events_refused(db):
    if connection.vendor != "postgresql":
        pytest.skip("the rollback is caused by a PostgreSQL trigger")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION sb_refuse_events() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'realtime events refused by the test'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER sb_refuse_events BEFORE INSERT ON communications_realtimeevent "
            "FOR EACH STATEMENT EXECUTE FUNCTION sb_refuse_events()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS sb_refuse_events ON communications_realtimeevent")
        cursor.execute("DROP FUNCTION IF EXISTS sb_refuse_events()")


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_upload_whose_send_rolls_back_leaves_no_file(
    events_refused, manager, channel, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    conversation = factories.ConversationFactory(channel=channel)
    browser = Client(raise_request_exception=False)
    browser.force_login(manager)
    response = browser.post(
        f"/inbox/c/{conversation.pk}/upload/",
        {"file": SimpleUploadedFile("photo.png", b"\x89PNG....", "image/png"), "client_id": "c-1"},
    )
    assert response.status_code == 500
    assert not Message.objects.filter(client_id="c-1").exists()
    assert not Attachment.objects.exists()
    assert files_under(tmp_path) == []


def test_an_ingest_that_rolls_back_leaves_no_file(events_refused, channel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    item = InboundMessage(
        sender=InboundSender(external_id="customer-1", name="Ann"),
        kind=Message.Kind.IMAGE,
        external_id="wamid.rollback",
        attachments=(InboundAttachment("image/png", "p.png", data=b"\x89PNG fake"),),
    )
    with pytest.raises(DatabaseError, match="realtime events refused"):
        ingest_message(channel, item)
    assert not Attachment.objects.exists()
    assert files_under(tmp_path) == []


def test_the_same_upload_without_the_failure_writes_its_file(manager, channel, settings, tmp_path):
    """The control: the same request, committed, has its file on disk."""
    settings.MEDIA_ROOT = tmp_path
    conversation = factories.ConversationFactory(channel=channel)
    browser = Client()
    browser.force_login(manager)
    response = browser.post(
        f"/inbox/c/{conversation.pk}/upload/",
        {"file": SimpleUploadedFile("photo.png", b"\x89PNG....", "image/png"), "client_id": "c-1"},
    )
    assert response.status_code == 201
    assert files_under(tmp_path) == [Attachment.objects.get().file.name]
