"""The media view the thread's <img>, <video> and <audio> load: signed, access-checked, Range."""

import time

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from communications import media
from communications.media import attachment_url
from communications.models import Attachment
from tests import factories

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def attachment(channel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    message = factories.MessageFactory(conversation=factories.ConversationFactory(channel=channel))
    item = Attachment(message=message, filename="clip.webm", mime_type="video/webm", size=len(DATA))
    item.file.save("clip.webm", ContentFile(DATA), save=True)
    return item


@pytest.fixture
def browser(manager):
    client = Client()
    client.force_login(manager)
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_file_missing_from_storage_is_a_404_not_a_500(browser, attachment):
    attachment.file.storage.delete(attachment.file.name)
    response = browser.get(attachment_url(attachment))
    assert response.status_code == 404
    assert Attachment.objects.filter(pk=attachment.pk).exists()


def test_whole_file_then_byte_ranges(browser, attachment, count_queries):
    url = attachment_url(attachment)
    with count_queries() as counter:
        whole = browser.get(url)
    # session, user with their channels, the attachment with its message
    assert counter.count == 3, counter.explain()
    assert whole.status_code == 200 and body(whole) == DATA
    assert whole["Accept-Ranges"] == "bytes" and whole["Content-Type"] == "video/webm"

    part = browser.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert body(part) == DATA[100:200]

    open_ended = browser.get(url, HTTP_RANGE="bytes=10000-")
    assert open_ended.status_code == 206 and body(open_ended) == DATA[10000:]
    suffix = browser.get(url, HTTP_RANGE="bytes=-16")
    assert suffix.status_code == 206 and body(suffix) == DATA[-16:]
    beyond = browser.get(url, HTTP_RANGE=f"bytes={len(DATA)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(DATA)}"


def test_a_leaked_url_is_404_for_a_manager_of_another_team(attachment):
    outsider = factories.UserFactory(username="outsider")
    factories.TeamFactory().members.add(outsider)
    client = Client()
    client.force_login(outsider)
    assert client.get(attachment_url(attachment)).status_code == 404


def test_a_browser_without_a_session_is_sent_to_the_login(attachment):
    response = Client().get(attachment_url(attachment), HTTP_ACCEPT="text/html,*/*;q=0.8")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_anything_else_without_credentials_is_404_not_a_login_page(attachment):
    response = Client().get(attachment_url(attachment), HTTP_ACCEPT="*/*")
    assert response.status_code == 404


def test_an_api_client_with_a_token_gets_the_file(api, attachment, count_queries):
    url = attachment_url(attachment)
    with count_queries() as counter:
        response = api.get(url, HTTP_RANGE="bytes=0-9", HTTP_ACCEPT="text/html")
    # token with its user and visible channels, the attachment with its message
    assert counter.count == 2, counter.explain()
    assert response.status_code == 206 and body(response) == DATA[:10]


def test_an_api_client_without_access_or_with_a_bad_token_gets_404(attachment):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    outsider = factories.UserFactory(username="api-outsider")
    factories.TeamFactory().members.add(outsider)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=outsider).key}")
    assert client.get(attachment_url(attachment), HTTP_ACCEPT="text/html").status_code == 404
    client.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    response = client.get(attachment_url(attachment), HTTP_ACCEPT="text/html")
    assert response.status_code == 404 and "Location" not in response


def test_forged_and_expired_links_are_404(browser, attachment, monkeypatch):
    url = attachment_url(attachment)
    assert browser.get(url.replace("/media/a/", "/media/a/x")).status_code == 404
    monkeypatch.setattr(media, "MEDIA_URL_MAX_AGE", 0)
    time.sleep(1.1)  # the signature's timestamp has whole-second resolution
    assert browser.get(url).status_code == 404
