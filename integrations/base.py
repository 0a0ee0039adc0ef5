"""The provider interface every channel implements.

A provider only translates: inbound payloads into `InboundMessage`s for the ingest path, and a
stored outbound `Message` into one call to its platform. Storing, dedup, retries, statuses and
realtime events belong to the funnels in `communications.services`, never to a provider.
"""

from dataclasses import dataclass
from typing import Protocol

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from communications.models import Channel, Message


class DeliveryError(Exception):
    """The platform did not take the message. `reason` is shown to staff as it is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later: timeouts, 5xx, rate limits, the homeserver being down."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: rejected recipient, outside the messaging window, bad config."""


class AmbiguousDeliveryError(DeliveryError):
    """The request may have reached the platform but its answer did not reach us (a read
    timeout, a connection dropped after the body was sent). On a provider whose resend is
    not safe the message becomes "unknown" for staff to decide; one with `resend_is_safe`
    (Matrix: the transaction id returns the first event) simply retries."""


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


@dataclass(frozen=True)
class SendResult:
    external_id: str | None = None


class Provider(Protocol):
    kind: str
    # True when sending the same message again cannot double it on the platform (an
    # idempotency key the platform honours). Then a worker that died mid-call, or an
    # ambiguous timeout, is retried; otherwise the message becomes "unknown" for staff.
    resend_is_safe: bool

    def __init__(self, channel: Channel): ...

    def send(self, message: Message) -> SendResult:
        """Deliver one stored outbound message; idempotent by `message.pk` where possible."""
        ...

    # Optional hooks: a provider that does not define one simply lacks the feature.
    #
    # def send_typing(self, conversation: Conversation, user) -> None:
    #     """A manager is typing in `conversation`: show it to the customer where the channel
    #     can (one short-lived notice; the inbox socket calls it at most every 3 s per
    #     conversation, off the event loop). Errors may raise: the caller logs them."""
