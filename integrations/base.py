"""The provider interface every channel implements.

A provider only translates: inbound payloads into `InboundMessage`s for the ingest path, and a
stored outbound `Message` into one call to its platform. Storing, dedup, retries, statuses and
realtime events belong to the funnels in `communications.services`, never to a provider.
"""

from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True)
class ConfigProblem:
    """Something missing from a channel's settings, in staff's words, naming the admin field.
    `blocks_replies`: managers cannot reply until it is fixed (they are told so up front)."""

    text: str
    blocks_replies: bool = True


@dataclass(frozen=True)
class SendResult:
    external_id: str | None = None


class Provider(Protocol):
    kind: str

    def __init__(self, channel: Channel): ...

    def send(self, message: Message) -> SendResult:
        """Deliver one stored outbound message; idempotent by `message.pk` where possible."""
        ...

    # Optional hooks: a provider that does not define one simply lacks the feature.
    #
    # def configuration_problems(self) -> list[ConfigProblem]:
    #     """What the channel's settings lack (no I/O: read config and secrets only). Shown on
    #     the channel in the admin; a blocking one tells managers before they type."""
    #
    # def send_typing(self, conversation: Conversation, user) -> None:
    #     """A manager is typing in `conversation`: show it to the customer where the channel
    #     can (one short-lived notice; the inbox socket calls it at most every 3 s per
    #     conversation, off the event loop). Errors may raise: the caller logs them."""
