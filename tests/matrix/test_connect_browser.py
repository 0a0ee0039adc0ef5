"""The Connect WhatsApp page in Debian's Chromium, against the real Synapse + bridge emulator.

The page is served by Django's live server (the one Synapse pushes its appservice transactions
to, see conftest.stack); the bridge's QR image and its edits reach the page through the
appservice endpoint → mapper → MatrixConnection → the page's status poll.
"""

import re
import time

import pytest

from integrations.matrix.models import MatrixConnection
from tests import factories
from tests.browser.conftest import (  # noqa: F401  (fixtures)
    chromium,
    requirements_met,
    screenshot,
)

from .stack import wait_until

pytestmark = [
    pytest.mark.matrix,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PHONE = "15550009999"


def qr_src(page) -> str:
    return page.get_attribute("#wa-qr-image", "src") or ""


def test_manager_connects_whatsapp_with_the_qr_page(stack, chromium, screenshot, live_server):  # noqa: F811
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    # Slower QR refreshes than the emulator's test default, so each step can be seen.
    stack.bridge.qr_first_refresh_seconds = 5.0
    stack.bridge.qr_refresh_seconds = 20.0
    user = factories.UserFactory(username=f"wa-browser-{time.monotonic_ns()}", first_name="Maya")

    context = chromium.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(20000)
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/integrations/whatsapp/connect/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "switchboard")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/integrations/whatsapp/connect/$"))
        page.wait_for_selector("#wa-start:visible")
        assert page.inner_text("#wa-state") == "Disconnected"
        assert not page.is_visible("#wa-qr-image") and not page.is_visible("#wa-connected")
        screenshot(page, "matrix-connect-1-disconnected")

        page.click("#wa-start")
        page.wait_for_function(
            "() => (document.getElementById('wa-qr-image').src || '')"
            ".startsWith('data:image/png;base64,')"
        )
        first = qr_src(page)
        assert page.is_visible("#wa-qr-image") and not page.is_visible("#wa-start")
        page.wait_for_function(
            "() => /^\\d+$/.test(document.getElementById('wa-countdown').textContent)"
            " && Number(document.getElementById('wa-countdown').textContent) > 0"
        )
        countdown = int(page.inner_text("#wa-countdown"))
        assert 50 <= countdown <= 60  # the real bridge's first refresh comes after 60 s
        screenshot(page, "matrix-connect-2-qr")

        # The bridge edits its QR message: the page shows the new image, and counts down anew.
        page.wait_for_function(
            "(first) => document.getElementById('wa-qr-image').src !== first", arg=first
        )
        second = qr_src(page)
        assert second.startswith("data:image/png;base64,") and second != first
        assert page.get_attribute("#wa-qr-image", "data-refreshes") == "1"
        page.wait_for_function(
            "() => Number(document.getElementById('wa-countdown').textContent) > 10"
        )
        screenshot(page, "matrix-connect-3-qr-refreshed")

        connection = MatrixConnection.objects.get(user=user)
        stack.bridge.complete_login(PHONE, user_id=connection.matrix_user_id)
        page.wait_for_selector("#wa-connected:visible")
        assert page.inner_text("#wa-connected") == f"Connected as +{PHONE}"
        assert not page.is_visible("#wa-qr-image")
        assert page.is_visible("#wa-logout") and page.inner_text("#wa-state") == "Connected"
        screenshot(page, "matrix-connect-4-connected")
        wait_until(lambda: MatrixConnection.objects.get(pk=connection.pk).phone == PHONE)
    finally:
        stack.bridge.qr_first_refresh_seconds = 1.5
        stack.bridge.qr_refresh_seconds = 1.0
        context.close()
