"""The client's address as our own proxy saw it, and nobody else's word for it.

nginx sets `X-Forwarded-For` to the address that connected to it (`$remote_addr`, one entry).
This ASGI middleware copies that address into the scope (so `REMOTE_ADDR`, the login brake and
the webhook throttles see the real client) only when the TCP peer is one of TRUSTED_PROXIES;
from anyone else the header is ignored. The servers therefore run without their own proxy-header
handling (uvicorn `--no-proxy-headers`, daphne without `--proxy-headers`), which would believe
the header from any peer. Should a proxy append instead of set, the rightmost
entry is still the one the proxy itself wrote.
"""

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry)


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def _header(scope, name: bytes) -> str:
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ",".join(values)


def forwarded_client(scope) -> str | None:
    """The address our proxy reported for this connection, or None when not to be believed."""
    client = scope.get("client")
    if not client or not is_trusted_proxy(client[0]):
        return None
    entries = [entry.strip() for entry in _header(scope, b"x-forwarded-for").split(",")]
    candidate = entries[-1] if entries else ""
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class TrustedProxyMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            address = forwarded_client(scope)
            if address is not None:
                scope = dict(scope, client=[address, 0])
                proto = _header(scope, b"x-forwarded-proto").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    secure = proto == "https"
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if secure else "ws"
                    else:
                        scope["scheme"] = proto
        return await self.app(scope, receive, send)
