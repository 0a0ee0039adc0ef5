"""Which provider carries a channel's messages."""

from communications.models import Channel

from .api.provider import ApiChannelProvider
from .base import ConfigProblem, PermanentDeliveryError, Provider
from .whatsapp_cloud.provider import CloudApiProvider

PROVIDERS: dict[str, type] = {
    Channel.Kind.API: ApiChannelProvider,
}


# --- WhatsApp mode switch (R6): the mode, read through the cache, picks the provider. -------
# mode → provider class; "matrix" is integrations.matrix, "classical" (Cloud API) registers here.
WHATSAPP_PROVIDERS: dict[str, type] = {}
WHATSAPP_PROVIDERS["classical"] = CloudApiProvider


def _whatsapp_provider_class() -> type | None:
    from .matrix.provider import MatrixProvider
    from .matrix.settings_cache import whatsapp_mode

    mode = whatsapp_mode()
    if mode == "matrix":
        return MatrixProvider
    provider_class = WHATSAPP_PROVIDERS.get(mode)
    if provider_class is None:
        raise PermanentDeliveryError(
            f"WhatsApp mode is '{mode}' but the WhatsApp Cloud API provider is not available in "
            "this version yet; switch the mode to 'matrix' in admin → Matrix settings"
        )
    return provider_class


# --- end WhatsApp mode switch ----------------------------------------------------------------


def provider_for(channel: Channel) -> Provider:
    if channel.kind == Channel.Kind.WHATSAPP:
        return _whatsapp_provider_class()(channel)
    provider_class = PROVIDERS.get(channel.kind)
    if provider_class is None:
        raise PermanentDeliveryError(
            f"sending through {channel.get_kind_display()} channels is not available in this "
            "version of Switchboard yet"
        )
    return provider_class(channel)


def configuration_problems(channel: Channel) -> list[ConfigProblem]:
    """What this channel's settings lack for the provider that carries it now (none when its
    provider is not built: that is not something staff can fix in the settings)."""
    try:
        provider = provider_for(channel)
    except PermanentDeliveryError:
        return []
    check = getattr(provider, "configuration_problems", None)
    return check() if check else []


# What managers read when a channel is not set up: their words, not the settings' names.
NOT_CONNECTED = {
    Channel.Kind.WHATSAPP: "this WhatsApp number isn't connected yet — ask an admin",
}


def reply_unavailable_reason(channel: Channel) -> str:
    """Why replies cannot be sent on this channel ("" when they can): shown above the reply
    box before anyone types, not only as a failed message after."""
    try:
        provider_for(channel)
    except PermanentDeliveryError as exc:
        return exc.reason
    if any(problem.blocks_replies for problem in configuration_problems(channel)):
        return NOT_CONNECTED.get(
            channel.kind,
            f"this {channel.get_kind_display()} channel isn't set up yet — ask an admin",
        )
    return ""
