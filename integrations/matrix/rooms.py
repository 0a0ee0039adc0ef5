"""Which manager's room is this, and what is it: a portal (a WhatsApp chat) or management.

Rooms are learnt from the invite our manager gets (we join and read the room's `m.bridge`
state), or — for an event in a room we have never seen — by asking the homeserver with each
connection's token which of them is in it.
"""

import logging

from django.db import IntegrityError, transaction

from .client import MatrixClient, MatrixError, MatrixUnavailable
from .models import MatrixConnection, MatrixRoom
from .settings_cache import get_config

logger = logging.getLogger(__name__)

BRIDGE_STATE_TYPES = ("m.bridge", "uk.half-shot.bridge")


def bridge_info_from_state(state: list[dict]) -> dict | None:
    for event in state:
        if event.get("type") in BRIDGE_STATE_TYPES and event.get("content", {}).get("channel"):
            return event["content"]
    return None


def remember_room(
    connection: MatrixConnection, room_id: str, state: list[dict] | None
) -> MatrixRoom:
    if room_id == connection.management_room_id:
        kind, info = MatrixRoom.Kind.MANAGEMENT, None
    else:
        info = bridge_info_from_state(state or [])
        kind = MatrixRoom.Kind.PORTAL if info else MatrixRoom.Kind.OTHER
    values = {"connection": connection, "kind": kind}
    if info:
        channel_info = info.get("channel", {})
        values.update(
            chat_jid=channel_info.get("id", "")[:255],
            receiver=str(channel_info.get("fi.mau.receiver", ""))[:32],
            is_group=info.get("com.beeper.room_type") == "group_dm"
            or channel_info.get("id", "").endswith("@g.us"),
            name=(channel_info.get("displayname") or "")[:255],
        )
    try:
        with transaction.atomic():
            room, created = MatrixRoom.objects.get_or_create(room_id=room_id, defaults=values)
    except IntegrityError:
        room, created = MatrixRoom.objects.get(room_id=room_id), False
    if not created and room.kind == MatrixRoom.Kind.OTHER and kind != MatrixRoom.Kind.OTHER:
        MatrixRoom.objects.filter(pk=room.pk).update(**values)
        room.refresh_from_db()
    return room


def join_and_remember(connection: MatrixConnection, room_id: str) -> MatrixRoom | None:
    """Our manager was invited: join (idempotent) and learn what the room is."""
    client = MatrixClient.for_connection(connection)
    try:
        client.join(room_id)
        state = client.room_state(room_id)
    except MatrixError as exc:
        logger.warning("cannot join %s as %s: %s", room_id, connection.matrix_user_id, exc)
        return None
    return remember_room(connection, room_id, state)


def room_for(room_id: str, *, allow_lookup: bool = True) -> MatrixRoom | None:
    room = (
        MatrixRoom.objects.select_related("connection", "channel").filter(room_id=room_id).first()
    )
    if room is not None or not room_id:
        return room
    connection = MatrixConnection.objects.filter(management_room_id=room_id).first()
    if connection is not None:
        return remember_room(connection, room_id, None)
    if not allow_lookup:
        return None
    config = get_config()
    for connection in MatrixConnection.objects.order_by("pk"):
        if not connection.access_token:
            continue
        try:
            state = MatrixClient.for_connection(connection, config).room_state(room_id)
        except MatrixError:
            continue  # not a member
        except MatrixUnavailable:
            raise
        return remember_room(connection, room_id, state)
    return None
