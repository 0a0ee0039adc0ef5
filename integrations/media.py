"""Fetching an attachment's media again from the provider that first named it.

Used by the retry of a download that failed at ingest (communications.services.attachments):
an `mxc://` URI comes from the Matrix homeserver, any other reference on a WhatsApp channel
is a Cloud API media id, on a Messenger / Instagram channel a Meta CDN URL, and on a Telegram
channel a bot's `file_id`.
"""

import dataclasses
from collections.abc import Callable

from communications.models import Attachment, Channel
from communications.providers import MediaFetchError
from communications.services.ingest import InboundAttachment, InboundMessage

# attachment named by the platform → (bytes, MIME type); raises an error with a `reason`.
Fetch = Callable[[InboundAttachment], tuple[bytes, str]]


def with_media(messages: list[InboundMessage], fetch: Fetch, errors=(MediaFetchError,)):
    """The messages with their attachments' bytes filled in by `fetch`, before ingest.

    Media that cannot be fetched (the platform down, an expired id) never costs the message:
    its attachment carries the reason and is stored as a placeholder that is retried
    (communications.services.attachments)."""
    done = []
    for message in messages:
        attachments = []
        for attachment in message.attachments:
            if attachment.data is not None or not attachment.provider_ref:
                attachments.append(attachment)
                continue
            try:
                data, mime_type = fetch(attachment)
            except errors as exc:
                failed = dataclasses.replace(
                    attachment,
                    mime_type=attachment.mime_type or "application/octet-stream",
                    download_error=exc.reason,
                )
                attachments.append(failed)
                continue
            attachments.append(dataclasses.replace(attachment, data=data, mime_type=mime_type))
        done.append(dataclasses.replace(message, attachments=tuple(attachments)))
    return done


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
