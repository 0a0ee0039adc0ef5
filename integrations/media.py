"""Fetching an attachment's media again from the provider that first named it.

Used by the retry of a download that failed at ingest (communications.services.attachments):
an `mxc://` URI comes from the Matrix homeserver, any other reference on a WhatsApp channel
is a Cloud API media id, on a Messenger / Instagram channel a Meta CDN URL, and on a Telegram
channel a bot's `file_id`.
"""

from communications.models import Attachment, Channel
from communications.providers import MediaFetchError


def fetch_attachment(attachment: Attachment) -> tuple[bytes, str]:
    """The bytes and MIME type of the attachment's media. Raises MediaFetchError."""
    ref = attachment.provider_ref
    if ref.startswith("mxc://"):
        from .matrix.media import download_for_message

        return download_for_message(attachment.message, ref)
    if ref and attachment.message.channel.kind == Channel.Kind.WHATSAPP:
        from .whatsapp_cloud.media import MediaDownloadError, download_media

        try:
            return download_media(attachment.message.channel, ref)
        except MediaDownloadError as exc:
            raise MediaFetchError(exc.reason) from exc
    if attachment.message.channel.kind in (Channel.Kind.MESSENGER, Channel.Kind.INSTAGRAM):
        from .meta.media import fetch_attachment as fetch_meta

        fetched = fetch_meta(attachment)
        if fetched is not None:
            return fetched
    if ref and attachment.message.channel.kind == Channel.Kind.TELEGRAM:
        from .telegram.media import fetch_file

        known = "" if attachment.mime_type == "application/octet-stream" else attachment.mime_type
        return fetch_file(attachment.message.channel, ref, known)
    raise MediaFetchError("this attachment's media cannot be fetched again")
