"""Pointing the bot at us: `setWebhook` with a freshly generated secret.

Used by `manage.py telegram_set_webhook --channel ID --public-url URL` and by the channel's
admin action ("Set up the webhook at the platform"). The secret is stored in the channel's
encrypted secrets before Telegram hears of it, so the first update it sends is accepted.
"""

import secrets as random_secrets

import requests
from django.db import transaction
from django.urls import reverse

from communications.models import Channel
from communications.providers import DeliveryError

from .api import BotApi, BotApiError, delivery_error
from .parse import ALLOWED_UPDATES


def webhook_url(channel: Channel, public_url: str) -> str:
    """`https://crm.example.com` + `/webhooks/telegram/<id>/`."""
    path = reverse("webhook", kwargs={"source": "telegram", "channel_id": channel.pk})
    return public_url.rstrip("/") + path


def set_webhook(channel: Channel, public_url: str) -> str:
    """Register the webhook; returns what was done, in staff's words. Raises DeliveryError
    with Telegram's reason when it refuses (a wrong token, a URL that is not HTTPS…)."""
    if channel.kind != Channel.Kind.TELEGRAM:
        raise DeliveryError(f"{channel} is not a Telegram channel")
    if not public_url.startswith("https://"):
        raise DeliveryError(
            f"Telegram delivers webhooks over HTTPS only; {public_url!r} is not an https:// URL"
        )
    url = webhook_url(channel, public_url)
    secret = random_secrets.token_urlsafe(48)  # 64 characters of A-Za-z0-9_-
    api = BotApi(channel)  # no token: PermanentDeliveryError, nothing changed
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        previous = dict(locked.secrets or {})
        locked.secrets = {**previous, "webhook_secret": secret}
        locked.save(update_fields=["secrets"])
    try:
        api.call(
            "setWebhook",
            {"url": url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES},
        )
    except (BotApiError, requests.RequestException) as exc:
        # Telegram kept the old webhook: so do we, or its updates would be refused.
        Channel.objects.filter(pk=channel.pk).update(secrets=previous)
        raise delivery_error(exc) from exc
    channel.secrets = {**previous, "webhook_secret": secret}
    return f"Telegram now delivers {', '.join(ALLOWED_UPDATES)} updates to {url}"
