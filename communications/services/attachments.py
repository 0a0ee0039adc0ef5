"""Attachments whose media could not be fetched: kept as placeholders, retried until stored.

An inbound message is never dropped because its media failed to download: ingest stores it
with an attachment in state FAILED (the reason in `download_error`), and this module retries
the download, automatically with exponential backoff (`queue_download_retry`, after commit)
and on demand from the inbox. The bytes come from the provider
(`communications.providers.fetch_attachment`, which integrations register, run by
`communications.tasks.retry_attachment_download`);
when they arrive the attachment is filled in and a `message.updated` event goes out.
"""

import logging
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import events
from ..files import store_after_commit
from ..models import Attachment, Message
from ..serializers import message_payload

logger = logging.getLogger(__name__)

# Automatic attempts after the first failure: 30 s, 2 min, 8 min, 32 min, ~2 h, ~8.5 h.
MAX_AUTOMATIC_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 30


def retry_delay(attempts: int) -> int:
    return FIRST_RETRY_SECONDS * 4**attempts


def queue_download_retry(attachment_id: int, *, attempts: int) -> None:
    """Schedule the next automatic download attempt after the surrounding transaction
    commits."""
    from ..tasks import retry_attachment_download

    delay = retry_delay(attempts)
    transaction.on_commit(
        lambda: _publish(retry_attachment_download, (attachment_id,), {}, countdown=delay)
    )


def request_download_retry(attachment: Attachment) -> None:
    """A manager asked for the download now (the inbox's retry button)."""
    from ..tasks import retry_attachment_download

    transaction.on_commit(
        lambda: _publish(retry_attachment_download, (attachment.pk,), {"manual": True})
    )


def _publish(task, args, kwargs, **options) -> None:
    """A broker that is down must not turn a stored message into a 500: the placeholder stays
    failed and visible, and the inbox's retry button queues it again later."""
    try:
        task.apply_async(args, kwargs, **options)
    except Exception:
        logger.warning("could not queue %s%s; the broker is unreachable", task.name, args)


def failed_attachment(attachment_id: int) -> Attachment | None:
    """The attachment, with its message and channel, if its download is still to be done."""
    return (
        Attachment.objects.select_related("message__channel")
        .filter(pk=attachment_id, download_state=Attachment.DownloadState.FAILED)
        .first()
    )


def record_download(attachment_id: int, data: bytes, mime_type: str) -> bool:
    """The bytes arrived: fill the placeholder in (once) and tell the inbox."""
    with transaction.atomic():
        attachment = (
            Attachment.objects.select_for_update()
            .filter(pk=attachment_id, download_state=Attachment.DownloadState.FAILED)
            .first()
        )
        if attachment is None:
            return False  # another attempt stored it first
        attachment.download_state = Attachment.DownloadState.STORED
        attachment.download_error = ""
        attachment.download_attempts += 1
        attachment.size = len(data)
        if mime_type and attachment.mime_type in ("", "application/octet-stream"):
            attachment.mime_type = mime_type
        store_after_commit(attachment, ContentFile(data), attachment.filename)
        attachment.save()
        _announce(attachment.message_id)
    return True


def record_download_failure(attachment_id: int, reason: str, *, automatic: bool) -> int:
    """Another attempt failed: count it, keep the reason, schedule the next automatic one
    while any are left. Returns the attempts made so far."""
    with transaction.atomic():
        updated = Attachment.objects.filter(
            pk=attachment_id, download_state=Attachment.DownloadState.FAILED
        ).update(download_attempts=F("download_attempts") + 1, download_error=reason[:1000])
        if not updated:
            return 0
        attempts = Attachment.objects.values_list("download_attempts", flat=True).get(
            pk=attachment_id
        )
        if automatic and attempts < MAX_AUTOMATIC_ATTEMPTS:
            queue_download_retry(attachment_id, attempts=attempts)
        message_id = Attachment.objects.values_list("message_id", flat=True).get(pk=attachment_id)
        _announce(message_id)
    return attempts


def _announce(message_id: int) -> None:
    message = (
        Message.objects.select_related("sender_user")
        .select_for_update(of=("self",))
        .get(pk=message_id)
    )
    message.updated_at = timezone.now()
    Message.objects.filter(pk=message_id).update(updated_at=message.updated_at)
    events.record_event(
        events.MESSAGE_UPDATED,
        channel_id=message.channel_id,
        conversation_id=message.conversation_id,
        payload=message_payload(message),
    )


def record_thumbnail(attachment_id: int, png: bytes) -> bool:
    """The worker rendered a preview: store it (after commit, like every file) and tell the
    inbox, whose next copy of the message carries `thumbnail_url`."""
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().filter(pk=attachment_id).first()
        if attachment is None or attachment.thumbnail:
            return False
        name = attachment.thumbnail.field.generate_filename(
            attachment, f"{attachment_id}-{uuid.uuid4().hex[:8]}.png"
        )
        attachment.thumbnail.name = name
        storage = attachment.thumbnail.storage
        attachment.save(update_fields=["thumbnail"])
        transaction.on_commit(lambda: storage.save(name, ContentFile(png)))
        _announce(attachment.message_id)
    return True
