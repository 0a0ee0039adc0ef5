"""The installable inbox: manifest, root-scoped service worker, offline shell; the panel in the
page; demo settings."""

import json

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from communications.notifications.models import NotificationPreference

pytestmark = pytest.mark.django_db


def test_manifest_makes_the_inbox_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["start_url"] == "/inbox/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert finders.find(icon["src"].removeprefix("/static/")), icon["src"]


def test_service_worker_is_served_from_the_root_uncached(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response["Cache-Control"]
    body = response.content.decode()
    assert "/offline/" in body and "showNotification" in body
    assert "switchboard-shell-" in body


def test_offline_shell_needs_no_login_and_says_reconnecting():
    response = Client().get("/offline/")
    assert response.status_code == 200
    assert "Reconnecting" in response.content.decode()


def test_inbox_page_links_the_manifest_and_has_the_panel(manager):
    browser = Client()
    browser.force_login(manager)
    html = browser.get("/inbox/").content.decode()
    assert 'rel="manifest" href="/manifest.webmanifest"' in html
    assert 'id="notify-panel"' in html and 'id="notify-toggle"' in html
    assert "new-message.wav" in html


def test_seed_demo_sets_the_demo_managers_notification_settings():
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    manager = NotificationPreference.objects.get(user__username="manager")
    assert (manager.level, manager.sound) == ("mine", True)
    assert NotificationPreference.objects.get(user__username="alex").level == "all"
