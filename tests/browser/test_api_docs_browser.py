"""The API docs render in Chromium with every request to another host blocked (offline)."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def offline_page(chromium):
    """A page that may reach only the loopback server; what else it tries is recorded."""
    context = chromium.new_context()
    blocked: list[str] = []

    def route(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, blocked, errors


def test_swagger_ui_renders_the_operations_offline(live_server_url, chromium, screenshot):
    context, page, blocked, errors = offline_page(chromium)
    page.goto(f"{live_server_url}/api/docs/")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = operations.all_inner_texts()
    assert any("/api/v1/conversations/" in path for path in paths), paths
    screenshot(page, "api-docs-swagger-offline")
    assert blocked == []
    assert errors == []
    context.close()


def test_redoc_renders_the_operations_offline(live_server_url, chromium, screenshot):
    context, page, blocked, errors = offline_page(chromium)
    page.goto(f"{live_server_url}/api/redoc/")
    expect(page.locator("[data-section-id^='operation/']").first).to_be_attached()
    expect(page.get_by_role("heading", name="Switchboard API").first).to_be_visible()
    screenshot(page, "api-docs-redoc-offline")
    # ReDoc's bundle always asks for its vendor's footer logo; offline the image just hides
    # itself (onError). Nothing else may leave the machine.
    assert [url for url in blocked if url != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
    assert errors == []
    context.close()
