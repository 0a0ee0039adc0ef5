"""The installable inbox: web app manifest, the service worker at the site root (its scope is
the whole site, so it can answer for /inbox/) and the offline shell it shows when the server
cannot be reached."""

import hashlib
import json

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from . import push

# What the service worker keeps for offline: the shell and everything it shows.
SHELL_ASSETS = (
    "inbox/app.css",
    "pwa/offline.css",
    "pwa/offline.js",
    "pwa/icons/icon-192.png",
    "pwa/icons/badge-72.png",
)
ICONS = (
    ("pwa/icons/icon-192.png", "192x192", "any"),
    ("pwa/icons/icon-512.png", "512x512", "any"),
    ("pwa/icons/maskable-512.png", "512x512", "maskable"),
)


@require_GET
@cache_control(max_age=3600)
def manifest(request):
    data = {
        "name": "Switchboard inbox",
        "short_name": "Switchboard",
        "description": "Every customer conversation in one real-time inbox.",
        "id": "/inbox/",
        "start_url": "/inbox/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f6f7f9",
        "theme_color": "#151b26",
        "icons": [
            {"src": static(path), "sizes": size, "type": "image/png", "purpose": purpose}
            for path, size, purpose in ICONS
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


@require_GET
@cache_control(no_cache=True)
def service_worker(request):
    """Rendered, so it names the static files by their (hashed, in production) URLs; the cache
    name changes with them, and the browser installs the new worker on its next check."""
    assets = [static(path) for path in SHELL_ASSETS]
    shell = "/offline/"
    version = hashlib.sha256(json.dumps([shell, *assets]).encode()).hexdigest()[:12]
    body = render_to_string(
        "pwa/sw.js",
        {
            "config_json": json.dumps(
                {
                    "cache": f"switchboard-shell-{version}",
                    "shell": shell,
                    "assets": assets,
                    "icon": static("pwa/icons/icon-192.png"),
                    "badge": static("pwa/icons/badge-72.png"),
                }
            )
        },
    )
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response


@require_GET
def offline(request):
    """The shell: no session, no data; it says it is reconnecting and reloads when it can."""
    return render(request, "pwa/offline.html", {"push_available": push.is_available()})
