"""Which provider carries a channel's messages."""

from communications.models import Channel

from .api.provider import ApiChannelProvider
from .base import PermanentDeliveryError, Provider

PROVIDERS: dict[str, type] = {
    Channel.Kind.API: ApiChannelProvider,
}


def provider_for(channel: Channel) -> Provider:
    provider_class = PROVIDERS.get(channel.kind)
    if provider_class is None:
        raise PermanentDeliveryError(
            f"sending through {channel.get_kind_display()} channels is not available in this "
            "version of Switchboard yet"
        )
    return provider_class(channel)
