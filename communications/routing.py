"""WebSocket routes; crm/asgi.py wraps them in the origin check and session auth."""

from django.urls import path

from .consumers import InboxConsumer

websocket_urlpatterns: list = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
]
