import pytest

from communications.models import Channel
from integrations.matrix import connect
from integrations.matrix.models import MatrixConnection
from tests import factories

from .stack import start_stack, wait_until

OWN_PHONE = "15550000001"


@pytest.fixture(scope="module")
def stack(live_server):
    """Synapse pushes to the live Switchboard's appservice endpoint."""
    with start_stack(live_server.url + "/matrix/appservice") as s:
        yield s


def connect_manager(stack, username: str, phone: str = OWN_PHONE) -> tuple:
    """A manager goes through the QR login (the bridge "scans" it) and is connected."""
    user = factories.UserFactory(username=username)
    connection = connect.start_login(user)
    wait_until(
        lambda: MatrixConnection.objects.get(pk=connection.pk).qr_data, what="the first QR code"
    )
    stack.bridge.complete_login(phone, user_id=connection.matrix_user_id)
    wait_until(
        lambda: MatrixConnection.objects.get(pk=connection.pk).state == "connected",
        what="connected",
    )
    connection.refresh_from_db()
    return user, connection


def whatsapp_channel() -> Channel:
    return Channel.objects.get(kind=Channel.Kind.WHATSAPP)


def bridge_saw_typing(stack, room: str, user_id: str) -> bool:
    """Whether the bridge emulator has seen `user_id` typing in `room` (its m.typing list)."""
    return any(
        e.get("type") == "m.typing"
        and e.get("room_id") == room
        and user_id in (e.get("content") or {}).get("user_ids", [])
        for e in list(stack.bridge.ephemeral_seen)
    )
