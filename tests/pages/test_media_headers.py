"""Media cannot carry script: only an allow-list is inline, the rest downloads, never sniffed."""

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from communications.media import attachment_url
from communications.models import Attachment
from tests import factories

SCRIPT = b"<html><script>fetch('/api/v1/conversations/')</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def browser(manager):
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def stored(channel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    message = factories.MessageFactory(conversation=factories.ConversationFactory(channel=channel))

    def store(filename: str, mime_type: str, data: bytes) -> Attachment:
        item = Attachment(message=message, filename=filename, mime_type=mime_type, size=len(data))
        item.file.save(filename, ContentFile(data), save=True)
        return item

    return store


@pytest.mark.parametrize(
    ("filename", "mime_type", "data"),
    [
        ("invoice.html", "text/html", SCRIPT),
        ("invoice.html", "TEXT/HTML; charset=utf-8", SCRIPT),
        ("logo.svg", "image/svg+xml", SVG),
        ("page.xhtml", "application/xhtml+xml", SCRIPT),
        ("notes.txt", "text/plain", SCRIPT),
        ("odd.bin", "", SCRIPT),
        ("broken", "text/html\r\nX-Injected: 1", SCRIPT),
    ],
)
def test_anything_not_allow_listed_is_a_download(browser, stored, filename, mime_type, data):
    response = browser.get(attachment_url(stored(filename, mime_type, data)))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert "X-Injected" not in response


@pytest.mark.parametrize(
    ("filename", "mime_type"),
    [("photo.jpg", "image/jpeg"), ("clip.mp4", "video/mp4"), ("voice.ogg", "audio/ogg")],
)
def test_images_video_and_audio_are_inline(browser, stored, filename, mime_type):
    response = browser.get(attachment_url(stored(filename, mime_type, b"\x00" * 32)))
    assert response["Content-Type"] == mime_type
    assert response["Content-Disposition"] == f'inline; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pdf_is_inline_only_inside_a_sandbox(browser, stored):
    response = browser.get(attachment_url(stored("terms.pdf", "application/pdf", b"%PDF-1.4")))
    assert response["Content-Disposition"] == 'inline; filename="terms.pdf"'
    assert "sandbox" in response["Content-Security-Policy"].split(";")[-1]


def test_ranges_and_the_x_accel_answer_carry_the_same_headers(browser, stored, settings):
    item = stored("invoice.html", "text/html", SCRIPT)
    part = browser.get(attachment_url(item), HTTP_RANGE="bytes=0-5")
    assert part.status_code == 206
    assert part["Content-Disposition"].startswith("attachment")
    assert part["X-Content-Type-Options"] == "nosniff"
    settings.MEDIA_X_ACCEL = True
    accel = browser.get(attachment_url(item))
    assert "X-Accel-Redirect" in accel
    assert accel["Content-Disposition"].startswith("attachment")
    assert "sandbox" in accel["Content-Security-Policy"]
