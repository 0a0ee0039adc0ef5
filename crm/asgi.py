"""ASGI entry point: HTTP and websockets (uvicorn; daphne serves it too); see docker-compose.yml."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

from crm.asgi_handler import get_one_hop_asgi_application  # noqa: E402

# Django's handler, its sync middleware chain and view in one thread hop (crm/asgi_handler.py).
django_asgi_app = get_one_hop_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from communications.routing import websocket_urlpatterns  # noqa: E402
from communications.webhook_door import WebhookDoor  # noqa: E402
from crm.proxy import TrustedProxyMiddleware  # noqa: E402
from crm.websocket_auth import SessionUserMiddleware  # noqa: E402

# The client address comes from nginx's X-Forwarded-For only when nginx is the peer (crm/proxy).
application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            # Accepted webhook deliveries skip Django's handler (communications/webhook_door).
            "http": WebhookDoor(django_asgi_app),
            # The session's user, read once at connect; frames go out unwrapped (crm/websocket_auth).
            "websocket": AllowedHostsOriginValidator(
                SessionUserMiddleware(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)

# What this process keeps is built: the URLconf and its views imported now (not at the first
# request), then start-up's objects frozen out of the collector's sight (crm/gc_tuning.py).
from django.urls import get_resolver  # noqa: E402

from crm.gc_tuning import tune as tune_garbage_collector  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imports every view module
tune_garbage_collector()
