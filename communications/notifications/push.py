"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), by pywebpush.

Push is available when VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY are set (`manage.py
webpush_keys` makes a pair). Without them everything else works and the inbox says Web Push is
unavailable. Endpoints are only ever the push services' own (WEBPUSH_ENDPOINT_HOSTS): the worker
POSTs to whatever URL a browser gave, so an arbitrary URL would let a manager make the server
call internal addresses.
"""

import base64
import fnmatch
import ipaddress
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings

logger = logging.getLogger(__name__)


class PushUnavailable(Exception):
    """No (valid) VAPID keys are configured."""


@dataclass(frozen=True)
class Outcome:
    """What a push service answered: `gone` (404/410: delete the subscription), `retry`
    (429, 5xx, no answer: try again later), `failed` (any other refusal), or `sent`."""

    result: str
    status: int | None = None
    reason: str = ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key() -> str:
    return (settings.VAPID_PUBLIC_KEY or "").strip()


def _keys_set() -> bool:
    return bool(public_key() and (settings.VAPID_PRIVATE_KEY or "").strip())


def is_available() -> bool:
    """Whether Web Push can be offered: both keys set, readable and a pair (otherwise
    `manage.py check` says what is wrong, and the inbox says Web Push is unavailable)."""
    try:
        vapid()
    except PushUnavailable:
        return False
    return True


def subject() -> str:
    return settings.VAPID_SUBJECT or f"mailto:{settings.DEFAULT_FROM_EMAIL}"


@lru_cache(maxsize=4)
def _vapid_for(private_key: str):
    from py_vapid import Vapid

    return Vapid.from_string(private_key.strip())


def vapid():
    """The signing key, or PushUnavailable naming what is wrong."""
    if not _keys_set():
        raise PushUnavailable("VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY are not set")
    try:
        key = _vapid_for(settings.VAPID_PRIVATE_KEY)
    except Exception as exc:
        raise PushUnavailable(f"VAPID_PRIVATE_KEY cannot be read: {exc}") from exc
    if public_key_of(key) != public_key():
        raise PushUnavailable("VAPID_PUBLIC_KEY is not the public half of VAPID_PRIVATE_KEY")
    return key


def public_key_of(key) -> str:
    return _b64url(
        key.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def generate_keys() -> tuple[str, str]:
    """A new pair as (public, private), both base64url: the public key is the uncompressed
    P-256 point browsers take as `applicationServerKey`, the private one its raw 32 bytes."""
    from py_vapid import Vapid

    key = Vapid()
    key.generate_keys()
    private = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    return public_key_of(key), _b64url(private)


def endpoint_problem(endpoint: str) -> str:
    """Why this endpoint is refused, or "" when it is a push service we post to."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "is not a URL"
    if not host:
        return "is not a URL"
    allowed = [pattern.lower() for pattern in settings.WEBPUSH_ENDPOINT_HOSTS]
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed):
        return f"{host} is not a known push service (WEBPUSH_ENDPOINT_HOSTS)"
    if parts.scheme == "https":
        return ""
    if parts.scheme == "http" and _is_loopback(host):
        return ""  # a local push service that was allowed by name (tests, development)
    return "must be an https URL"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_problems(p256dh: str, auth: str) -> dict[str, str]:
    """The browser's keys, checked the way the encryption will use them."""
    problems = {}
    try:
        point = _b64url_decode(p256dh)
        if len(point) != 65 or point[0] != 4:
            raise ValueError
    except (ValueError, TypeError):
        problems["p256dh"] = "must be a base64url uncompressed P-256 public key (65 bytes)"
    try:
        if len(_b64url_decode(auth)) != 16:
            raise ValueError
    except (ValueError, TypeError):
        problems["auth"] = "must be a base64url 16-byte auth secret"
    return problems


_session = None


def _http():
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def send(subscription, payload: dict, *, topic: str = "") -> Outcome:
    """Encrypt `payload` for one subscription and hand it to its push service."""
    from pywebpush import WebPushException, webpush

    problem = endpoint_problem(subscription.endpoint)
    if problem:
        return Outcome("failed", reason=f"endpoint {problem}")
    headers = {"Urgency": "high"}
    if topic:
        headers["Topic"] = topic  # an undelivered push with the same topic is replaced
    try:
        response = webpush(
            subscription_info=subscription.subscription_info(),
            data=json.dumps(payload, separators=(",", ":")),
            vapid_private_key=vapid(),
            vapid_claims={"sub": subject()},
            ttl=settings.WEBPUSH_TTL,
            headers=headers,
            timeout=settings.WEBPUSH_TIMEOUT,
            requests_session=_http(),
        )
    except WebPushException as exc:
        status = exc.status_code
        text = _short(getattr(exc.response, "text", "") or exc.message)
        if status in (404, 410):
            return Outcome("gone", status, text)
        if status is None or status == 429 or status >= 500 or status == 408:
            return Outcome("retry", status, text)
        return Outcome("failed", status, text)
    except requests.RequestException as exc:
        return Outcome("retry", None, _short(f"{exc.__class__.__name__}: {exc}"))
    return Outcome("sent", response.status_code)


def _short(text: str) -> str:
    return " ".join(str(text).split())[:300]
