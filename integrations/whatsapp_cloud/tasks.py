"""Celery tasks of the WhatsApp Cloud API channel: thin wrappers around templates.py."""

import logging

from celery import shared_task

from .templates import TemplateSyncError, channels_to_sync, sync_templates

logger = logging.getLogger(__name__)


@shared_task
def sync_all_templates() -> dict:
    """Beat, daily: every Cloud API channel's templates from its WhatsApp Business Account.
    One channel failing (token expired, Meta down) does not stop the others; the next run
    tries again, and the stored templates stay as they were meanwhile."""
    done: dict = {}
    for channel in channels_to_sync():
        try:
            done[channel.pk] = sync_templates(channel)
        except TemplateSyncError as exc:
            logger.warning("WhatsApp templates of channel %s not synced: %s", channel.pk, exc)
            done[channel.pk] = f"error: {exc.reason}"
    return done
