"""Which provider carries a channel's messages: integrations' registrations into the core's
registry (`communications.providers`), made by `IntegrationsConfig.ready()`."""

from communications.models import Channel
from communications.providers import (
    configuration_problems,
    provider_for,
    register_media_fetcher,
    register_provider,
    reply_unavailable_reason,
)

from .api.provider import ApiChannelProvider
from .base import PermanentDeliveryError
from .email.provider import EmailProvider
from .media import fetch_attachment
from .meta.provider import MetaProvider
from .telegram.provider import TelegramProvider
from .whatsapp_cloud.provider import CloudApiProvider

PROVIDERS: dict[str, type] = {
    Channel.Kind.API: ApiChannelProvider,
    Channel.Kind.EMAIL: EmailProvider,
    Channel.Kind.MESSENGER: MetaProvider,
    Channel.Kind.INSTAGRAM: MetaProvider,
    Channel.Kind.TELEGRAM: TelegramProvider,
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


def _whatsapp_provider(channel: Channel):
    return _whatsapp_provider_class()(channel)


def register_providers() -> None:
    from communications.webhooks import register_receiver

    from .api.views import RECEIVER as api_receiver
    from .matrix.webhook import MatrixReceiver
    from .meta.webhook import MetaReceiver
    from .telegram.webhook import TelegramReceiver
    from .whatsapp_cloud.webhook import WhatsAppCloudReceiver

    register_receiver(api_receiver)
    register_receiver(WhatsAppCloudReceiver())
    register_receiver(MetaReceiver())
    register_receiver(TelegramReceiver())
    register_receiver(MatrixReceiver())  # stored by the appservice endpoint, not at /webhooks/
    for kind, provider_class in PROVIDERS.items():
        register_provider(kind, provider_class)
    register_provider(Channel.Kind.WHATSAPP, _whatsapp_provider)
    register_media_fetcher(fetch_attachment)


__all__ = [
    "configuration_problems",
    "provider_for",
    "register_providers",
    "reply_unavailable_reason",
]
