"""Media of Matrix events: downloaded before ingest, or later when that failed.

A failed download never costs the message: the mapper stores it with a placeholder
attachment naming the reason, and `download_for_message` fetches the bytes on a retry
(communications.services.attachments).
"""

from communications.models import Message

from ..media import MediaFetchError
from .client import MatrixClient, MatrixError, MatrixUnavailable
from .rooms import room_for
from .settings_cache import MatrixConfig, get_config


def download(connection, mxc: str, config: MatrixConfig) -> bytes:
    """The bytes of `mxc` as the room's connection sees them; MediaFetchError otherwise."""
    try:
        return MatrixClient.for_connection(connection, config).download(mxc)
    except MatrixError as exc:
        raise MediaFetchError(f"the homeserver did not give the media: {exc}") from exc
    except MatrixUnavailable as exc:
        raise MediaFetchError(f"media download failed: {exc}") from exc


def download_for_message(message: Message, mxc: str) -> tuple[bytes, str]:
    room_id = (message.metadata or {}).get("matrix_room") or message.conversation.external_id
    try:
        room = room_for(room_id, allow_lookup=False)
    except MatrixUnavailable as exc:
        raise MediaFetchError(f"media download failed: {exc}") from exc
    if room is None:
        raise MediaFetchError("the Matrix room of this message is no longer known")
    return download(room.connection, mxc, get_config()), ""
