"""Background processing of WhatsApp Cloud API webhook deliveries that carry media."""

import logging

from celery import shared_task

from communications.models import Channel

from .media import MediaDownloadError
from .webhook import process_payload

logger = logging.getLogger(__name__)

MAX_MEDIA_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=MAX_MEDIA_RETRIES)
def process_whatsapp_delivery(self, channel_id: int, payload: dict) -> int:
    """Download the media of one webhook delivery, then ingest it (idempotent by wamid)."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return 0
    give_up = self.request.retries >= MAX_MEDIA_RETRIES or self.request.is_eager
    try:
        return process_payload(channel, payload, give_up_on_media=give_up)
    except MediaDownloadError as exc:
        logger.warning("WhatsApp media for channel %s: %s; retrying", channel_id, exc.reason)
        raise self.retry(countdown=2 ** (self.request.retries + 1)) from exc
