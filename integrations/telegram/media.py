"""Media of inbound messages: a `file_id` becomes bytes through getFile + the file download.

Runs in the webhook worker before ingest, so a message is announced with its file stored.
A download that fails never costs the message: its attachment carries the reason and is
stored as a placeholder that is retried (communications.services.attachments), through
`fetch_file` again (integrations/media.py): a bot's `file_id` stays valid.
"""

import mimetypes

import requests

from communications.models import Channel
from communications.providers import MediaFetchError, PermanentDeliveryError
from communications.services.ingest import InboundMessage

from ..media import with_media as fill_media
from .api import BotApi, BotApiError


def fetch_file(channel: Channel, file_id: str, mime_type: str = "") -> tuple[bytes, str]:
    """The bytes and MIME type of one file. Raises MediaFetchError with the reason."""
    try:
        data, file_path = BotApi(channel).file_bytes(file_id)
    except PermanentDeliveryError as exc:  # no bot token
        raise MediaFetchError(exc.reason) from exc
    except BotApiError as exc:
        raise MediaFetchError(f"Telegram file download: {exc.description}") from exc
    except requests.RequestException as exc:
        raise MediaFetchError(f"Telegram file download failed: {exc.__class__.__name__}") from exc
    # Telegram serves files as application/octet-stream: the path's extension says more.
    guessed = mimetypes.guess_type(file_path)[0] or ""
    return data, mime_type or guessed or "application/octet-stream"


def with_media(channel: Channel, messages: list[InboundMessage]) -> list[InboundMessage]:
    """The messages with their attachments' bytes filled in, or a reason where they failed."""
    return fill_media(messages, lambda a: fetch_file(channel, a.provider_ref, a.mime_type))
