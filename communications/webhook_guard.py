"""Throttles for inbound webhooks: per channel for authenticated deliveries, per source address
for failed authentications.

Platforms deliver from a handful of addresses (Meta), so a per-address limit on authenticated
deliveries would throttle a busy number by its own provider. Instead:
- a request from an address that has failed authentication WEBHOOK_AUTH_FAILURE_LIMIT times
  (per channel id) is refused before anything else is done (one cache read, no database);
- an authenticated delivery takes a number from its channel's atomic counter
  (WEBHOOK_RATE_LIMIT, generous by default) and is refused only above it.
Both counters degrade to per-process counting when Redis is unreachable (crm/throttle.py):
a customer's message is never refused because the cache is down.
"""

from django.conf import settings

from crm import throttle


class Refused(Exception):
    """429: `detail` for the caller, `retry_after` seconds."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def _failure_counter(request, channel_id) -> str:
    return f"webhook-auth-failures:{request.META.get('REMOTE_ADDR', '')}:{channel_id}"


def check_not_blocked(request, channel_id) -> None:
    """Raise Refused when this address has failed authentication too often for this channel."""
    check_not_blocked_address(request.META.get("REMOTE_ADDR", ""), channel_id)


def check_not_blocked_address(address: str, channel_id) -> None:
    rate = throttle.Rate.parse(settings.WEBHOOK_AUTH_FAILURE_LIMIT)
    if throttle.peek(f"webhook-auth-failures:{address}:{channel_id}") >= rate.limit:
        raise Refused(
            "too many failed authentications from this address; try again later", rate.seconds
        )


def note_failed_authentication(request, channel_id) -> None:
    """Count a wrong token/signature, or an unknown channel id. Counted per channel id so that a
    misconfigured or deleted channel cannot block the provider's deliveries to the others."""
    rate = throttle.Rate.parse(settings.WEBHOOK_AUTH_FAILURE_LIMIT)
    throttle.hit(_failure_counter(request, channel_id), rate.seconds)


def admit_delivery(channel_id: int) -> None:
    """Count an authenticated delivery for its channel; raise Refused above the limit."""
    refused = admit_deliveries(channel_id, 1)[0]
    if refused is not None:
        raise refused


def admit_deliveries(channel_id: int, count: int) -> list[Refused | None]:
    """Count `count` authenticated deliveries of one channel in one step (the fast door's
    batch); per delivery None when admitted, else its Refused. The first ones win."""
    rate = throttle.Rate.parse(settings.WEBHOOK_RATE_LIMIT)
    total = throttle.hit(f"webhook-channel:{channel_id}", rate.seconds, count)
    admitted = max(0, min(count, rate.limit - (total - count)))
    refused = Refused("this channel's delivery rate limit is exceeded; retry later", rate.seconds)
    return [None] * admitted + [refused] * (count - admitted)
