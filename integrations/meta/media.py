"""Media of inbound Messenger / Instagram messages: the webhook names a CDN URL.

The URL works without a token and expires after a while, so the worker fetches it right when
the delivery is processed, before the message is stored and announced. A download that fails
never costs the message: its attachment is stored as a placeholder with the reason and retried
(communications.services.attachments, through `fetch_attachment` below).
"""

import requests

from communications.models import Attachment, Channel
from communications.providers import MediaFetchError
from communications.services.ingest import InboundAttachment, InboundMessage

from ..media import with_media as fill_media
from .graph import timeout

# Messenger and Instagram attachments go up to 25 MB.
MAX_MEDIA_BYTES = 25 * 1024 * 1024
KINDS = (Channel.Kind.MESSENGER, Channel.Kind.INSTAGRAM)


def download(url: str) -> tuple[bytes, str]:
    """The bytes and MIME type behind a Meta CDN URL. Raises MediaFetchError."""
    try:
        with requests.get(url, timeout=timeout(), stream=True) as response:
            if response.status_code >= 400:
                raise MediaFetchError(f"media download: HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    raise MediaFetchError("media larger than 25 MB")
                chunks.append(chunk)
            mime_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    except requests.RequestException as exc:
        raise MediaFetchError(f"media download failed: {exc.__class__.__name__}") from exc
    return b"".join(chunks), mime_type


def with_media(messages: list[InboundMessage]) -> list[InboundMessage]:
    """The messages with their attachments' bytes filled in (failures as placeholders)."""
    return fill_media(messages, _fetch)


def _fetch(attachment: InboundAttachment) -> tuple[bytes, str]:
    data, mime_type = download(attachment.provider_ref)
    generic = mime_type in ("", "application/octet-stream", "binary/octet-stream")
    return data, attachment.mime_type if generic else mime_type


def fetch_attachment(attachment: Attachment) -> tuple[bytes, str] | None:
    """The retry of a failed download, for Messenger / Instagram attachments (None: not ours)."""
    if attachment.message.channel.kind not in KINDS or not attachment.provider_ref:
        return None
    data, mime_type = download(attachment.provider_ref)
    return data, mime_type or attachment.mime_type
