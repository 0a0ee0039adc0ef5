"""Media of inbound messages: Meta's webhook names a media id; the bytes take two GETs.

`GET {base}/{media_id}` (bearer token) → `{"url": ..., "mime_type": ...}`, then `GET url` with
the same token. Meta's URLs expire after minutes, so this runs right when the webhook arrives.
"""

import requests
from django.conf import settings

from communications.models import Channel
from communications.services.ingest import InboundMessage

from ..base import PermanentDeliveryError
from ..media import with_media as fill_media
from .provider import auth_headers, graph_base

# WhatsApp documents go up to 100 MB.
MAX_MEDIA_BYTES = 100 * 1024 * 1024


class MediaDownloadError(Exception):
    def __init__(self, reason: str, *, temporary: bool):
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


def download_media(channel: Channel, media_id: str) -> tuple[bytes, str]:
    """The bytes and MIME type of one media id."""
    try:
        headers = auth_headers(channel)
    except PermanentDeliveryError as exc:
        raise MediaDownloadError(exc.reason, temporary=False) from exc
    timeout = settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"]
    try:
        meta = requests.get(f"{graph_base(channel)}/{media_id}", headers=headers, timeout=timeout)
        _check(meta, "media lookup")
        info = meta.json()
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise MediaDownloadError("Meta's media lookup named no URL", temporary=False)
        with requests.get(url, headers=headers, timeout=timeout, stream=True) as response:
            _check(response, "media download")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    raise MediaDownloadError("media larger than 100 MB", temporary=False)
                chunks.append(chunk)
        mime_type = info.get("mime_type") or response.headers.get("Content-Type", "")
        return b"".join(chunks), mime_type.split(";")[0].strip()
    except requests.RequestException as exc:
        raise MediaDownloadError(
            f"media download failed: {exc.__class__.__name__}", temporary=True
        ) from exc
    except ValueError as exc:
        raise MediaDownloadError("Meta's media lookup was not JSON", temporary=False) from exc


def _check(response: requests.Response, what: str) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise MediaDownloadError(f"{what}: HTTP {response.status_code}", temporary=True)
    if response.status_code >= 400:
        raise MediaDownloadError(f"{what}: HTTP {response.status_code}", temporary=False)


def with_media(channel: Channel, messages: list[InboundMessage]) -> list[InboundMessage]:
    """The messages with their attachments' bytes filled in (failures as placeholders)."""

    def fetch(attachment):
        data, mime_type = download_media(channel, attachment.provider_ref)
        return data, attachment.mime_type or mime_type

    return fill_media(messages, fetch, errors=(MediaDownloadError,))
