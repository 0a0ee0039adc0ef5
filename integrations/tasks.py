"""Celery tasks shared by the providers."""

from celery import shared_task

from communications.services import attachments

from .media import MediaFetchError, fetch_attachment


@shared_task(acks_late=True)
def retry_attachment_download(attachment_id: int, manual: bool = False) -> str:
    """Fetch a placeholder attachment's media once more. Safe to run twice: a stored one is
    skipped, and only the first of two concurrent successes fills it in."""
    attachment = attachments.failed_attachment(attachment_id)
    if attachment is None:
        return "skipped"
    try:
        data, mime_type = fetch_attachment(attachment)
    except MediaFetchError as exc:
        attachments.record_download_failure(attachment_id, exc.reason, automatic=not manual)
        return "failed"
    return "stored" if attachments.record_download(attachment_id, data, mime_type) else "skipped"
