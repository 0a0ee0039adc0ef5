"""Connect WhatsApp through the page's endpoints, bridge state changes, and the mode switch."""

import time

import pytest
from django.test import Client

from communications.models import Channel
from integrations.matrix import settings_cache
from integrations.matrix.models import MatrixConnection, MatrixSettings
from integrations.matrix.provider import MatrixProvider
from integrations.registry import provider_for
from integrations.whatsapp_cloud.provider import CloudApiProvider
from tests import factories

from .stack import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.matrix
def test_qr_login_flow_through_the_connect_endpoints(stack):
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    user = factories.UserFactory(username=f"qr-{time.monotonic_ns()}")
    browser = Client()
    browser.force_login(user)
    page = browser.get("/integrations/whatsapp/connect/")
    assert page.status_code == 200 and b"Connect WhatsApp" in page.content

    started = browser.post("/integrations/whatsapp/connect/start/")
    assert started.status_code == 200, started.content
    assert started.json()["state"] == "waiting_for_scan"

    def status():
        return browser.get("/integrations/whatsapp/connect/status/").json()

    first = wait_until(lambda: status()["qr"], what="the QR code")
    assert first["image"].startswith("data:image/png;base64,") and first["refreshes"] == 0
    assert 0 < first["expires_in"] <= 60
    # The bridge edits the QR: the page gets the new image.
    refreshed = wait_until(
        lambda: (s := status()["qr"]) and s["refreshes"] >= 1 and s, what="a refreshed QR"
    )
    assert refreshed["image"] != first["image"] and refreshed["expires_in"] <= 20

    connection = MatrixConnection.objects.get(user=user)
    stack.bridge.complete_login("15550001234", user_id=connection.matrix_user_id)
    done = wait_until(lambda: (s := status())["state"] == "connected" and s, what="connected")
    assert done["phone"] == "+15550001234" and done["qr"] is None

    # WhatsApp drops the device: the manager (and the admin) see it in plain words.
    stack.bridge.send_bridge_state(connection.matrix_user_id, "BAD_CREDENTIALS", error="logged out")
    failed = wait_until(lambda: (s := status())["state"] == "error" and s, what="error state")
    assert "BAD_CREDENTIALS" in failed["error"] and "connect again" in failed["error"]

    out = browser.post("/integrations/whatsapp/connect/logout/")
    assert out.json()["state"] == "disconnected"


@pytest.mark.matrix
def test_qr_timeout_is_shown_as_the_bridges_error(stack):
    stack.configure(auth_mode="appservice")
    user = factories.UserFactory(username=f"qt-{time.monotonic_ns()}")
    browser = Client()
    browser.force_login(user)
    browser.post("/integrations/whatsapp/connect/start/")
    connection = MatrixConnection.objects.get(user=user)
    wait_until(lambda: MatrixConnection.objects.get(pk=connection.pk).qr_data)
    stack.bridge.fail_login(user_id=connection.matrix_user_id)
    state = wait_until(
        lambda: (
            (s := browser.get("/integrations/whatsapp/connect/status/").json())["state"] == "error"
            and s
        )
    )
    assert state["error"] == "Entering code or scanning QR timed out. Please try again."


def test_mode_is_read_from_the_cache_without_queries(count_queries, settings):
    settings.WHATSAPP_MODE = "classical"
    settings_cache.invalidate()
    assert settings_cache.whatsapp_mode() == "classical"  # env default, no row
    MatrixSettings(whatsapp_mode="matrix").save()  # invalidates
    assert settings_cache.whatsapp_mode() == "matrix"
    with count_queries() as counter:
        assert settings_cache.whatsapp_mode() == "matrix"
        assert settings_cache.get_config().secrets == {}
    assert counter.count == 0, counter.explain()


def test_registry_resolves_whatsapp_by_mode():
    channel = Channel.objects.create(kind=Channel.Kind.WHATSAPP, name="WA")
    row = MatrixSettings(whatsapp_mode="matrix")
    row.save()
    assert isinstance(provider_for(channel), MatrixProvider)
    row.whatsapp_mode = "classical"
    row.save()
    assert isinstance(provider_for(channel), CloudApiProvider)


def test_secrets_are_encrypted_at_rest_and_never_shown_in_the_admin(admin_client):
    MatrixSettings(secrets={"hs_token": "very-secret-hs"}).save()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM integrations_matrixsettings WHERE id = 1")
        stored = cursor.fetchone()[0]
    assert "very-secret-hs" not in stored
    page = admin_client.get("/admin/integrations/matrixsettings/1/change/")
    assert page.status_code == 200
    assert b"very-secret-hs" not in page.content and b"set \xe2\x80\x94 leave blank" in page.content


def test_managers_cannot_open_matrix_settings_in_the_admin(client):
    staff = factories.UserFactory(username="staffer", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/integrations/matrixsettings/").status_code == 403
