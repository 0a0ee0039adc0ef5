"""The provider interface now lives in the core (`communications.providers`); this module
re-exports it so integrations' own code keeps one short import path."""

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from communications.providers import (  # noqa: F401
    AmbiguousDeliveryError,
    ConfigProblem,
    DeliveryError,
    PermanentDeliveryError,
    PreparedTemplate,
    Provider,
    ReplyOptions,
    SendResult,
    TemplateRejected,
    TemporaryDeliveryError,
)


def request_failure(exc: requests.RequestException, platform: str) -> DeliveryError:
    """What a failed HTTP call means for the message: a malformed URL → permanent; never
    connected → retry later; the request may have been sent → ambiguous."""
    name = exc.__class__.__name__
    if isinstance(exc, ValueError):  # MissingSchema, InvalidURL, InvalidHeader…: nothing sent
        return PermanentDeliveryError(f"{platform} address is not usable: {exc}")
    reason = exc.args[0] if exc.args else None
    never_connected = isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)) or (
        isinstance(exc, requests.ConnectionError)
        and isinstance(reason, MaxRetryError)
        and isinstance(reason.reason, NewConnectionError)
    )
    if never_connected:
        return TemporaryDeliveryError(f"{platform} unreachable: {name}")
    return AmbiguousDeliveryError(
        f"{platform} did not answer after the message was sent ({name}): it may or may not "
        "have arrived"
    )
