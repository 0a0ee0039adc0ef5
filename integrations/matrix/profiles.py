"""A bridged contact's name and picture from Synapse (R12): the core's refresh task calls
`MatrixProvider.fetch_profile`, in the background, never during ingest.

A direct chat's identity is keyed by its portal room and names the customer's ghost
(`username`, as the mapper stores it): the ghost's profile gives the display name (cleaned of
the bridge's " (WA)" and phone suffixes, as the mapper does) and an mxc avatar, downloaded from
the media repository as the room's manager. A group's identity is the room: its name and its
`m.room.avatar`.
"""

from urllib.parse import quote

from communications.models import ContactIdentity
from communications.providers import Profile

from ..base import PermanentDeliveryError, TemporaryDeliveryError
from .client import MatrixClient, MatrixError, MatrixUnavailable
from .models import MatrixRoom
from .rooms import room_for
from .settings_cache import get_config


def fetch_profile(identity: ContactIdentity) -> Profile | None:
    from .mapper import _is_ghost, _sender_for

    config = get_config()
    if not config.configured:
        return None
    try:
        room = room_for(identity.external_id, allow_lookup=False)
        if room is None or room.kind != MatrixRoom.Kind.PORTAL:
            return None
        client = MatrixClient.for_connection(room.connection, config)
        if room.is_group:
            name = _state(client, room.room_id, "m.room.name").get("name") or ""
            mxc = _state(client, room.room_id, "m.room.avatar").get("url") or ""
        else:
            ghost = identity.username
            if not _is_ghost(ghost, config):
                return None
            found = client.request("GET", f"/_matrix/client/v3/profile/{quote(ghost, safe='@:')}")
            name = _sender_for(room, ghost, config, profile=found).name
            mxc = found.get("avatar_url") or ""
        avatar, content_type = client.download_media(mxc) if _is_mxc(mxc) else (None, "")
    except MatrixUnavailable as exc:
        raise TemporaryDeliveryError(str(exc)) from exc
    except MatrixError as exc:
        raise PermanentDeliveryError(f"the homeserver refused the profile: {exc}") from exc
    return Profile(name=name, avatar=avatar, avatar_content_type=content_type)


def _state(client: MatrixClient, room_id: str, event_type: str) -> dict:
    try:
        return client.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/{event_type}"
        )
    except MatrixError as exc:
        if exc.status == 404:
            return {}  # the room has no such state: nothing to say
        raise


def _is_mxc(value) -> bool:
    return isinstance(value, str) and value.startswith("mxc://") and "/" in value[6:]
