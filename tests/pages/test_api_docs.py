"""The API docs pages ship Swagger UI and ReDoc with the app: every URL they name is ours."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


class Resources(HTMLParser):
    """Collects every URL a page loads or links to, and any inline script or style."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "spec-url"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if tag == "style" or (tag == "script" and not attrs.get("src")):
            self._in = tag
        if "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag} {attrs}>")

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(f"<{self._in}>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self._in = None


def page_resources(path: str) -> Resources:
    response = Client().get(path)
    assert response.status_code == 200, response.content[:300]
    parser = Resources()
    parser.feed(response.content.decode())
    return parser


def assert_ours(urls: list[str]) -> None:
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not one of ours"
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_only_our_own_files(path):
    page = page_resources(path)
    assert page.inline == []  # the site's Content-Security-Policy allows no inline code
    assert_ours(page.urls)
    assert any("/static/drf_spectacular_sidecar/" in url for url in page.urls)
    assert "/api/schema/" in page.urls or path == "/api/docs/"


def test_swagger_init_script_is_served_as_a_file_and_names_no_other_host():
    page = page_resources("/api/docs/")
    (script,) = [url for url in page.urls if "script" in url and "/api/docs/" in url]
    response = Client().get(script)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    body = response.content.decode()
    assert "/api/schema/" in body
    assert re.findall(r"https?://", body) == []
    assert '"validatorUrl": null' in body
