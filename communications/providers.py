"""The provider interface every channel implements, and the registry channels plug into.

A provider only translates: inbound payloads into `InboundMessage`s for the ingest path, and a
stored outbound `Message` into one call to its platform. Storing, dedup, retries, statuses and
realtime events belong to the funnels in `communications.services`, never to a provider.

The core owns this interface and never imports a provider: each provider app registers itself
in its `AppConfig.ready()` with `register_provider(kind, factory)`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .models import Attachment, Channel, Conversation, Message


class DeliveryError(Exception):
    """The platform did not take the message. `reason` is shown to staff as it is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later: timeouts, 5xx, rate limits, the homeserver being down.
    `retry_after`: the platform said how many seconds to wait (Telegram's flood control);
    the next attempt is not made sooner, whatever the backoff says."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: rejected recipient, outside the messaging window, bad config."""


class AmbiguousDeliveryError(DeliveryError):
    """The request may have reached the platform but its answer did not reach us (a read
    timeout, a connection dropped after the body was sent). On a provider whose resend is
    not safe the message becomes "unknown" for staff to decide; one with `resend_is_safe`
    (Matrix: the transaction id returns the first event) simply retries."""


@dataclass(frozen=True)
class SendResult:
    external_id: str | None = None


@dataclass(frozen=True)
class Profile:
    """What a platform says about a participant (R12). Empty fields mean "not known": they never
    overwrite what is stored. `avatar` is the picture's bytes, fetched by the provider."""

    name: str = ""
    username: str = ""
    avatar: bytes | None = None
    avatar_content_type: str = ""


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
    #
    # def fetch_profile(self, identity: ContactIdentity) -> Profile | None:
    #     """The participant's name, username and picture from the platform (R12). Called by a
    #     worker task in the background (first sight, then when older than the configured age),
    #     never during ingest. Raise `TemporaryDeliveryError` to be retried later; None when the
    #     platform has nothing to say."""
    #
    # def check_connection(self) -> str:
    #     """The admin's "test connection" action: one cheap authenticated call (Graph `me`,
    #     Telegram `getMe`). Returns what the platform answered in staff's words ("Connected as
    #     @shop_bot"); raises `DeliveryError` with the reason when it fails."""
    #
    # def register_webhook(self, public_url: str) -> str:
    #     """The admin's "set up the webhook" action: tell the platform to deliver to
    #     `public_url` + `/webhooks/<source>/<channel id>/` (Telegram `setWebhook` with a new
    #     secret). Returns what was done in staff's words; raises `DeliveryError` with the reason."""
    #
    # def reply_options(self, conversation: Conversation | None) -> ReplyOptions:
    #     """What the reply box offers (free text, templates only, or notes only, with the
    #     reason), for one conversation or (None) the channel as a whole. Cheap: it runs on
    #     every conversation detail. See `reply_options()` below."""
    #
    # def message_templates(self, conversation: Conversation) -> list[dict]:
    #     """The approved templates the reply box may send here, each with the variables a
    #     manager fills in (`TemplateSerializer` documents the shape)."""
    #
    # def prepare_template(self, conversation: Conversation, template: dict) -> PreparedTemplate:
    #     """Check a template send request (`{"id": …, "variables": {…}}`) and fill it in:
    #     the text stored and shown for the outbound message, and what `send` reads back from
    #     `message.metadata`. Raise `TemplateRejected` with the reason (→ 400)."""
    #
    # Inbound translation lives in each provider's own webhook receiver, which hands
    # `InboundMessage`s to `communications.services.ingest`. A provider says why it cannot
    # reply by raising `PermanentDeliveryError` from its factory (see `reply_options`).


# channel kind → factory(channel) → Provider. A provider class is such a factory; a kind whose
# provider depends on runtime settings (WhatsApp's mode switch) registers a resolver function.
ProviderFactory = Callable[[Channel], Provider]
_FACTORIES: dict[str, ProviderFactory] = {}


def register_provider(kind: str, factory: ProviderFactory) -> None:
    """Called from a provider app's `AppConfig.ready()`; registering a kind again replaces it."""
    _FACTORIES[kind] = factory


def provider_for(channel: Channel) -> Provider:
    factory = _FACTORIES.get(channel.kind)
    if factory is None:
        raise PermanentDeliveryError(
            f"sending through {channel.get_kind_display()} channels is not available in this "
            "version of Switchboard yet"
        )
    return factory(channel)


def profiles_supported(kind: str) -> bool:
    """Whether channels of this kind may have a `fetch_profile` hook (R12), asked by ingest
    without building a provider: a provider class answers for itself; a resolver function
    (a mode switch) may pick one that has it, and the refresh task finds out."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        return False
    return hasattr(factory, "fetch_profile") if isinstance(factory, type) else True


@dataclass(frozen=True)
class ReplyOptions:
    """What the reply box offers on a conversation, known before the manager types.

    `mode`: "text" (free text and attachments), "templates" (only the platform's approved
    message templates: WhatsApp outside its 24-hour window) or "notes" (nothing can be sent;
    private notes still work). `reason` says why free text is not offered ("" when it is)."""

    mode: str = "text"
    reason: str = ""


REPLY_MODES = ("text", "templates", "notes")


def reply_options(channel: Channel, conversation: Conversation | None = None) -> ReplyOptions:
    """The one place the reply box's state comes from: the provider's factory (a kind not
    built yet), its configuration problems, then its optional `reply_options(conversation)`
    hook (a disconnected number, a closed customer-service window)."""
    try:
        provider = provider_for(channel)
    except PermanentDeliveryError as exc:
        return ReplyOptions("notes", exc.reason)
    if any(p.blocks_replies for p in _problems_of(provider)):
        return ReplyOptions(
            "notes",
            NOT_CONNECTED.get(
                channel.kind,
                f"this {channel.get_kind_display()} channel isn't set up yet — ask an admin",
            ),
        )
    hook = getattr(provider, "reply_options", None)
    return hook(conversation) if hook else ReplyOptions()


def reply_unavailable_reason(channel: Channel, conversation: Conversation | None = None) -> str:
    """Why nothing can be sent here ("" when something can): on the channel as a whole, or
    in one conversation when given (a closed Messenger/Instagram window)."""
    options = reply_options(channel, conversation)
    return options.reason if options.mode == "notes" else ""


# What managers read when a channel is not set up: their words, not the settings' names.
NOT_CONNECTED = {
    Channel.Kind.WHATSAPP: "this WhatsApp number isn't connected yet — ask an admin",
}


@dataclass(frozen=True)
class ConfigProblem:
    """Something missing from a channel's settings, in staff's words, naming the admin field.
    `blocks_replies`: managers cannot reply until it is fixed (they are told so up front)."""

    text: str
    blocks_replies: bool = True


def _problems_of(provider) -> list[ConfigProblem]:
    check = getattr(provider, "configuration_problems", None)
    return check() if check else []


def configuration_problems(channel: Channel) -> list[ConfigProblem]:
    """What this channel's settings lack for the provider that carries it now (none when its
    provider is not built: that is not something staff can fix in the settings)."""
    try:
        provider = provider_for(channel)
    except PermanentDeliveryError:
        return []
    return _problems_of(provider)


# --- Message templates (WhatsApp): sent where free text is not allowed. --------------------
class TemplateRejected(Exception):
    """A template send request that cannot be sent; the text names the problem (a 400)."""


@dataclass(frozen=True)
class PreparedTemplate:
    content: str  # the filled-in text, stored and shown as the outbound message
    metadata: dict  # kept in `message.metadata`; the provider's `send` builds its call from it


def message_templates(conversation: Conversation) -> list[dict]:
    """The templates the reply box may send in this conversation ([] where there are none)."""
    try:
        provider = provider_for(conversation.channel)
    except PermanentDeliveryError:
        return []
    listing = getattr(provider, "message_templates", None)
    return listing(conversation) if listing else []


# --- Media that failed to download at ingest is fetched again through the provider. -------
class MediaFetchError(Exception):
    """The media could not be fetched this time; `reason` is shown to staff as it is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


MediaFetcher = Callable[[Attachment], tuple[bytes, str]]
_MEDIA_FETCHERS: list[MediaFetcher] = []


def register_media_fetcher(fetcher: MediaFetcher) -> None:
    """`fetcher(attachment)` → (bytes, MIME type), or MediaFetchError."""
    if fetcher not in _MEDIA_FETCHERS:
        _MEDIA_FETCHERS.append(fetcher)


def fetch_attachment(attachment: Attachment) -> tuple[bytes, str]:
    if not _MEDIA_FETCHERS:
        raise MediaFetchError("no provider can fetch this attachment's media")
    return _MEDIA_FETCHERS[0](attachment)
