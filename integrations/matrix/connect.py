"""Connect WhatsApp: a manager's Matrix account, the management room and the `login qr` talk.

`start_login` creates (or reuses) the manager's Matrix account, opens the management room with
the bridge bot and says `login qr`. What the bot answers arrives through the mapper (sync or
appservice) into `handle_management_event`, which keeps `MatrixConnection` current: the QR
image (replaced on every edit), "Successfully logged in as +…", failures and state changes
such as BAD_CREDENTIALS. The page polls `connection_status`.
"""

import base64
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .client import MatrixClient, MatrixError, appservice_client
from .models import MatrixConnection
from .numbers import number_channel
from .rooms import remember_room
from .settings_cache import MatrixConfig, get_config

logger = logging.getLogger(__name__)

# The bridge refreshes its QR after 60 s, then every 20 s (MATRIX.md); the page counts down.
QR_FIRST_REFRESH_SECONDS = 60
QR_REFRESH_SECONDS = 20

# Synapse's clock and ours may disagree a little.
CLOCK_SKEW = timedelta(seconds=5)

SUCCESS = re.compile(r"Successfully logged in as \+?(\d+)")
STATE_UPDATE = re.compile(r"State update for [^:]*: `?([A-Z_]+)`?(?: \(`?([^)`]*)`?\))?(?:: (.*))?")
ERROR_STATES = {"BAD_CREDENTIALS", "UNKNOWN_ERROR", "LOGGED_OUT", "TRANSIENT_DISCONNECT"}

PLAIN_ERRORS = {
    "BAD_CREDENTIALS": "WhatsApp logged this device out (BAD_CREDENTIALS): connect again.",
    "LOGGED_OUT": "WhatsApp logged this device out: connect again.",
    "UNKNOWN_ERROR": "The bridge lost the connection to WhatsApp (UNKNOWN_ERROR).",
    "TRANSIENT_DISCONNECT": "The bridge is reconnecting to WhatsApp…",
}


class ConnectError(Exception):
    """Shown to the manager as it is."""


def localpart_for(user, config: MatrixConfig | None = None) -> str:
    """Appservice users live in our registration's exclusive `switchboard_` namespace; users
    registered through the admin API must stay outside it (Synapse refuses them there)."""
    config = config or get_config()
    prefix = "switchboard_" if config.auth_mode == "appservice" else "sbmanager_"
    return f"{prefix}{user.pk}"


def ensure_account(user, config: MatrixConfig | None = None) -> MatrixConnection:
    """The manager's Matrix user, registered and logged in once, then reused."""
    config = config or get_config()
    if not config.configured:
        raise ConnectError("Matrix is not configured yet: ask an administrator.")
    user_id = f"@{localpart_for(user, config)}:{config.server_name}"
    connection, _ = MatrixConnection.objects.get_or_create(
        user=user, defaults={"matrix_user_id": user_id}
    )
    if connection.access_token:
        return connection
    client = MatrixClient(config.homeserver_url)
    try:
        if config.auth_mode == "appservice":
            as_client = appservice_client(config)
            as_client.appservice_register(localpart_for(user, config))
            login = as_client.login_appservice(connection.matrix_user_id)
        else:
            password = connection.secrets.get("password")
            if not password:
                password = secrets.token_urlsafe(24)
                client.admin_register(
                    config.secrets["registration_shared_secret"],
                    localpart_for(user, config),
                    password,
                )
                connection.secrets = {**connection.secrets, "password": password}
                connection.save(update_fields=["secrets", "updated_at"])
            login = client.login_password(connection.matrix_user_id, password)
    except MatrixError as exc:
        raise ConnectError(f"the homeserver refused to set up the account: {exc}") from exc
    connection.secrets = {**connection.secrets, "access_token": login["access_token"]}
    connection.device_id = login.get("device_id", "")
    connection.save(update_fields=["secrets", "device_id", "updated_at"])
    return connection


def start_login(user) -> MatrixConnection:
    config = get_config()
    connection = ensure_account(user, config)
    client = MatrixClient.for_connection(connection, config)
    if not connection.management_room_id:
        room_id = client.create_room([config.bridge_bot], is_direct=True, name="WhatsApp bridge")
        connection.management_room_id = room_id
        connection.save(update_fields=["management_room_id", "updated_at"])
        remember_room(connection, room_id, None)
    if not client.wait_for_member(connection.management_room_id, config.bridge_bot):
        raise ConnectError(
            f"the bridge bot {config.bridge_bot} did not join the management room: is "
            "mautrix-whatsapp running and registered with the homeserver?"
        )
    MatrixConnection.objects.filter(pk=connection.pk).update(
        state=MatrixConnection.State.WAITING_FOR_SCAN,
        last_error="",
        qr_event_id="",
        qr_mxc="",
        qr_data="",
        qr_updated_at=None,
        qr_refreshes=0,
        login_started_at=timezone.now(),
        updated_at=timezone.now(),
    )
    client.send_text(connection.management_room_id, "login qr")
    connection.refresh_from_db()
    return connection


def logout(user) -> MatrixConnection:
    config = get_config()
    connection = MatrixConnection.objects.get(user=user)
    if connection.management_room_id and connection.access_token:
        client = MatrixClient.for_connection(connection, config)
        if connection.state == MatrixConnection.State.WAITING_FOR_SCAN:
            client.send_text(connection.management_room_id, "cancel")
        elif connection.phone:
            client.send_text(connection.management_room_id, f"logout {connection.phone}")
    MatrixConnection.objects.filter(pk=connection.pk).update(
        state=MatrixConnection.State.DISCONNECTED,
        qr_event_id="",
        qr_data="",
        qr_mxc="",
        login_started_at=timezone.now(),
        updated_at=timezone.now(),
    )
    connection.refresh_from_db()
    return connection


def connection_status(connection: MatrixConnection | None) -> dict:
    if connection is None:
        return {
            "state": MatrixConnection.State.DISCONNECTED,
            "state_label": MatrixConnection.State.DISCONNECTED.label,
            "phone": "",
            "error": "",
            "qr": None,
        }
    qr = None
    if connection.state == MatrixConnection.State.WAITING_FOR_SCAN and connection.qr_data:
        period = QR_FIRST_REFRESH_SECONDS if connection.qr_refreshes == 0 else QR_REFRESH_SECONDS
        elapsed = (timezone.now() - connection.qr_updated_at).total_seconds()
        qr = {
            "event_id": connection.qr_event_id,
            "image": connection.qr_data,
            "refreshes": connection.qr_refreshes,
            "updated_at": connection.qr_updated_at.isoformat(),
            "expires_in": max(0, round(period - elapsed)),
        }
    return {
        "state": connection.state,
        "state_label": connection.get_state_display(),
        "phone": f"+{connection.phone}" if connection.phone else "",
        "error": connection.last_error,
        "qr": qr,
    }


# -- what the bridge bot says in the management room ---------------------------------------
def handle_management_event(connection: MatrixConnection, event: dict, *, config) -> bool:
    if event.get("sender") != config.bridge_bot:
        return False
    connection.refresh_from_db()
    sent_at = _timestamp(event)
    if (
        connection.login_started_at
        and sent_at
        and sent_at < connection.login_started_at - CLOCK_SKEW
    ):
        return False
    event_type = event.get("type")
    content = event.get("content") or {}
    if event_type == "m.room.redaction":
        target = event.get("redacts") or content.get("redacts")
        if target and target == connection.qr_event_id:
            _update(connection, qr_data="", qr_mxc="")
            return True
        return False
    if event_type != "m.room.message":
        return False
    relates = content.get("m.relates_to") or {}
    if relates.get("rel_type") == "m.replace":
        new = content.get("m.new_content") or {}
        if relates.get("event_id") == connection.qr_event_id and new.get("msgtype") == "m.image":
            return _show_qr(connection, new, event_id=connection.qr_event_id, refresh=True)
        return False
    if content.get("msgtype") == "m.image":
        if connection.state == MatrixConnection.State.WAITING_FOR_SCAN:
            return _show_qr(connection, content, event_id=event["event_id"], refresh=False)
        return False
    return _on_notice(connection, content.get("body", ""))


def _on_notice(connection: MatrixConnection, body: str) -> bool:
    match = SUCCESS.search(body)
    if match:
        _update(
            connection,
            state=MatrixConnection.State.CONNECTED,
            phone=match.group(1),
            last_error="",
            qr_data="",
            qr_mxc="",
        )
        # The number's channel exists (and its owner's teams see it) before its first chat.
        number_channel(connection, connection.phone)
        return True
    if body.startswith("Login failed:"):
        _update(
            connection,
            state=MatrixConnection.State.ERROR,
            last_error=body[len("Login failed:") :].strip(),
            qr_data="",
        )
        return True
    match = STATE_UPDATE.search(body)
    if match:
        state, code, message = match.groups()
        if state == "CONNECTED":
            _update(connection, state=MatrixConnection.State.CONNECTED, last_error="")
        elif state in ERROR_STATES:
            plain = PLAIN_ERRORS.get(state, state)
            if message:
                plain = f"{plain} ({message.strip()})"
            _update(connection, state=MatrixConnection.State.ERROR, last_error=plain)
        return True
    if body.strip() in ("Logged out", "You're not logged in"):
        _update(connection, state=MatrixConnection.State.DISCONNECTED)
        return True
    return False


def _show_qr(connection: MatrixConnection, content: dict, *, event_id: str, refresh: bool) -> bool:
    mxc = content.get("url", "")
    if not mxc or mxc == connection.qr_mxc:
        return False
    data = MatrixClient.for_connection(connection).download(mxc)
    mime = (content.get("info") or {}).get("mimetype") or "image/png"
    with transaction.atomic():
        locked = MatrixConnection.objects.select_for_update().get(pk=connection.pk)
        if locked.qr_mxc == mxc:
            return False
        _update(
            locked,
            qr_event_id=event_id,
            qr_mxc=mxc,
            qr_data=f"data:{mime};base64,{base64.b64encode(data).decode()}",
            qr_updated_at=timezone.now(),
            qr_refreshes=locked.qr_refreshes + 1 if refresh else 0,
        )
    return True


def _update(connection: MatrixConnection, **values) -> None:
    values["updated_at"] = timezone.now()
    MatrixConnection.objects.filter(pk=connection.pk).update(**values)
    for key, value in values.items():
        setattr(connection, key, value)


def _timestamp(event: dict) -> datetime | None:
    ts = event.get("origin_server_ts")
    return datetime.fromtimestamp(ts / 1000, tz=UTC) if ts else None
