"""Calls to Meta's Graph API for Messenger and Instagram, and what its errors mean.

Every call goes to `settings.META_GRAPH_BASE` with the channel's page access token. A Graph
error is temporary (rate limits 4, 17, 32, 613; "temporarily unavailable" 1, 2; send failures
1200; any 5xx or 429: retried with backoff) or permanent (failed, with Meta's own message).
"""

import requests
from django.conf import settings

from communications.models import Channel

from ..base import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

# Rate limits: 4 app, 17 user, 32 page, 613 calls-within-time; 1 / 2 unknown or temporary
# service errors; 1200 "temporary send message failure".
TEMPORARY_CODES = {1, 2, 4, 17, 32, 613, 1200}
# (code, subcode) of a reply outside the messaging window.
OUTSIDE_WINDOW_ERRORS = {(10, 2018278), (10, 2534022), (551, 1545041)}
INVALID_TOKEN_CODE = 190


def graph_base() -> str:
    return settings.META_GRAPH_BASE.rstrip("/")


def platform_name(channel: Channel) -> str:
    return "Instagram" if channel.kind == Channel.Kind.INSTAGRAM else "Messenger"


def page_token(channel: Channel) -> str:
    token = (channel.secrets or {}).get("page_access_token", "")
    if not token:
        raise PermanentDeliveryError(
            f"this {platform_name(channel)} channel has no page access token: an admin sets it "
            "in admin → Channels"
        )
    return token


def auth_headers(channel: Channel) -> dict:
    # A header, not the access_token parameter: a URL with the token could end up in a log.
    return {"Authorization": f"Bearer {page_token(channel)}"}


def timeout() -> float:
    return settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"]


def error_of(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, dict) else {}


def graph_error(channel: Channel, response: requests.Response) -> DeliveryError:
    """A non-2xx Graph answer as a delivery error: temporary or permanent, in Meta's words."""
    error = error_of(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    name = platform_name(channel)
    text = error.get("error_user_msg") or error.get("message") or ""
    reason = (
        f"{name} error {code}: {text}" if code else f"{name} answered HTTP {response.status_code}"
    )
    if code and not text:
        reason = f"{name} error {code}"
    if (code, subcode) in OUTSIDE_WINDOW_ERRORS:
        return PermanentDeliveryError(
            f"outside {name}'s 24-hour messaging window ({reason}); the HUMAN_AGENT tag allows "
            "replies for 7 days where the page has it (admin → Channels)"
        )
    if code == INVALID_TOKEN_CODE:
        return PermanentDeliveryError(
            f"{reason} — the page access token is no longer valid: an admin sets a new one in "
            "admin → Channels"
        )
    if (
        response.status_code == 429
        or response.status_code >= 500
        or code in TEMPORARY_CODES
        or error.get("is_transient") is True
    ):
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)


def get(channel: Channel, path: str, params: dict | None = None) -> dict:
    """GET `{base}/{path}`; raises DeliveryError (Temporary for network trouble)."""
    try:
        response = requests.get(
            f"{graph_base()}/{path.lstrip('/')}",
            params=params or {},
            headers=auth_headers(channel),
            timeout=timeout(),
        )
    except requests.RequestException as exc:
        raise TemporaryDeliveryError(
            f"{platform_name(channel)} unreachable: {exc.__class__.__name__}"
        ) from exc
    if response.status_code >= 400:
        raise graph_error(channel, response)
    try:
        answer = response.json()
    except ValueError as exc:
        raise TemporaryDeliveryError(f"{platform_name(channel)} answered with no JSON") from exc
    return answer if isinstance(answer, dict) else {}
