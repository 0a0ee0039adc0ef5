"""The signed-in user of a websocket, read once from its session cookie when it connects.

Channels' `AuthMiddlewareStack` does the same, and also wraps the socket's `send` to save
the session on any message that could carry a cookie. A websocket cannot set a cookie after
its handshake and our consumer never changes the session, yet the wrapper ran on every frame:
two lazy-object lookups and a session check per event per socket, ~17 % of the websocket
server's CPU while 200 inbox sockets took 400 frames per message (py-spy of daphne under
`bench/realpath.py --shapes reads`). Here the session and user are resolved by Channels' own
`get_user` (session hash verified, inactive users refused by the auth backend), and the
consumer sends straight to the server.
"""

from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie


def _cookies(scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1"))
    return {}


class SessionUserMiddleware:
    def __init__(self, inner):
        self.inner = inner
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        cookies = _cookies(scope)
        session = self.session_store(cookies.get(settings.SESSION_COOKIE_NAME))
        scope = dict(scope, cookies=cookies, session=session)
        scope["user"] = await get_user(scope)
        return await self.inner(scope, receive, send)
