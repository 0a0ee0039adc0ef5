"""Which provider carries a channel's messages."""

from communications.models import Channel

from .api.provider import ApiChannelProvider
from .base import PermanentDeliveryError, Provider
from .email.provider import EmailProvider
from .whatsapp_cloud.provider import CloudApiProvider

PROVIDERS: dict[str, type] = {
    Channel.Kind.API: ApiChannelProvider,
    Channel.Kind.EMAIL: EmailProvider,
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


def reply_unavailable_reason(channel: Channel) -> str:
    """Why replies cannot be sent on this channel in this version ("" when they can): shown
    above the reply box before anyone types, not only as a failed message after."""
    try:
        provider_for(channel)
    except PermanentDeliveryError as exc:
        return exc.reason
    return ""
