"""MEDIA_X_ACCEL=1: after Django's checks, nginx sends the file from its internal location."""

import pytest
from django.core.files.base import ContentFile

from communications.media import attachment_url
from communications.models import Attachment
from tests import factories


@pytest.fixture
def attachment(settings, tmp_path, channel):
    settings.MEDIA_ROOT = tmp_path
    message = factories.MessageFactory(conversation__channel=channel, channel=channel)
    item = Attachment(message=message, filename="clip one.mp4", mime_type="video/mp4", size=64)
    item.file.save("clip one.mp4", ContentFile(bytes(range(64))), save=True)
    return item


@pytest.mark.django_db
def test_x_accel_redirect_names_the_file_under_the_internal_prefix(
    settings, client, manager, attachment
):
    settings.MEDIA_X_ACCEL = True
    client.force_login(manager)
    response = client.get(attachment_url(attachment), HTTP_RANGE="bytes=0-9")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == (
        "/protected-media/" + attachment.file.name.replace(" ", "%20")
    )
    assert response["Content-Type"] == "video/mp4"
    assert response.content == b""


@pytest.mark.django_db
def test_without_x_accel_django_streams_the_range(settings, client, manager, attachment):
    settings.MEDIA_X_ACCEL = False
    client.force_login(manager)
    response = client.get(attachment_url(attachment), HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == bytes(range(10, 20))


@pytest.mark.django_db
def test_no_redirect_for_someone_who_may_not_see_the_channel(settings, client, attachment):
    settings.MEDIA_X_ACCEL = True
    client.force_login(factories.UserFactory(username="outsider"))
    response = client.get(attachment_url(attachment))
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


@pytest.mark.django_db
def test_files_outside_media_root_are_not_redirected(settings, tmp_path, rf):
    from communications.media import serve_file_with_range

    settings.MEDIA_X_ACCEL = True
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media").mkdir()
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"0123456789")
    response = serve_file_with_range(rf.get("/"), str(outside), "", "elsewhere.bin")
    assert "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == b"0123456789"
