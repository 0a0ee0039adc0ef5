"""A PDF that arrives gets a preview of its first page, rendered by the worker after the file
is written, announced to the inbox, and served under the attachment's own permission."""

import base64
import io

import pypdfium2
import pytest
from rest_framework.test import APIClient

from communications.models import Attachment, Channel, RealtimeEvent
from communications.thumbnails import render_pdf_first_page
from tests import factories

pytestmark = pytest.mark.django_db


def a_pdf() -> bytes:
    document = pypdfium2.PdfDocument.new()
    document.new_page(200, 300)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_an_inbound_pdf_gets_a_first_page_preview(
    manager, django_capture_on_commit_callbacks, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path
    channel = factories.ChannelFactory(kind=Channel.Kind.API, secrets={"inbound_token": "tok"})
    channel.teams.add(*manager.teams.all())
    inbound = APIClient()
    inbound.credentials(HTTP_AUTHORIZATION="Bearer tok")
    body = {
        "external_id": "pdf-1",
        "sender": {"id": "c1", "name": "Ada"},
        "attachments": [
            {
                "filename": "invoice.pdf",
                "mime_type": "application/pdf",
                "data_base64": base64.b64encode(a_pdf()).decode(),
            }
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = inbound.post(f"/api/v1/channels/{channel.pk}/inbound/", body, format="json")
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    assert attachment.thumbnail  # rendered by the (eager) worker task after the file was written
    updated = RealtimeEvent.objects.filter(type="message.updated").last()
    [payload] = updated.payload["attachments"]
    assert payload["thumbnail_url"].endswith("?variant=thumbnail")

    viewer = APIClient()
    viewer.force_login(manager)  # the media view is a page: the session signs in
    preview = viewer.get(payload["thumbnail_url"])
    assert preview.status_code == 200, preview.content
    assert preview["Content-Type"] == "image/png"
    assert b"".join(preview.streaming_content).startswith(b"\x89PNG")
    stranger = APIClient()
    stranger.force_login(factories.UserFactory())
    assert stranger.get(payload["thumbnail_url"]).status_code == 404


def test_a_broken_pdf_keeps_its_download_link_only(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7 not really")
    with pytest.raises(ValueError, match="not a readable PDF"):
        render_pdf_first_page(str(path))
