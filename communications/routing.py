"""WebSocket routes (the inbox consumer is added with the realtime work)."""

websocket_urlpatterns: list = []
