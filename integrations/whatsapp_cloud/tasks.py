"""Background processing of WhatsApp Cloud API webhook deliveries that carry media."""

from celery import shared_task

from communications.models import Channel

from .webhook import process_payload


@shared_task(bind=True, acks_late=True)
def process_whatsapp_delivery(self, channel_id: int, payload: dict) -> int:
    """Download the media of one webhook delivery, then ingest it (idempotent by wamid).

    Media that fails to download is stored as a placeholder and retried on its own
    (communications.tasks.retry_attachment_download): the message is stored now either way."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return 0
    return process_payload(channel, payload)
