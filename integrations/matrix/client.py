"""A thin client for the Matrix client-server API (requests; the sync loop uses matrix-nio).

Errors are two kinds, as the send path needs them: `MatrixUnavailable` (worth retrying: the
homeserver is down, slow, overloaded or rate-limiting) and `MatrixError` (it answered no).
"""

import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from .settings_cache import MatrixConfig, get_config


class MatrixError(Exception):
    def __init__(self, status: int, errcode: str, error: str):
        super().__init__(f"{errcode or status}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error


class MatrixUnavailable(Exception):
    """The homeserver could not be reached or asked us to come back later."""


_session = requests.Session()


class MatrixClient:
    def __init__(
        self,
        base_url: str,
        access_token: str = "",
        *,
        as_user_id: str = "",
        timeout: float | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.as_user_id = as_user_id  # masquerade as this user (appservice token)
        self.timeout = timeout or settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"]

    @classmethod
    def for_connection(cls, connection, config: MatrixConfig | None = None) -> "MatrixClient":
        config = config or get_config()
        return cls(config.homeserver_url, connection.access_token)

    # -- plumbing ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        data: bytes | None = None,
        headers: dict | None = None,
        raw: bool = False,
        timeout: float | None = None,
    ) -> Any:
        params = dict(params or {})
        if self.as_user_id:
            params["user_id"] = self.as_user_id
        all_headers = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        all_headers.update(headers or {})
        try:
            response = _session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                data=data,
                headers=all_headers,
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            raise MatrixUnavailable(f"homeserver unreachable: {exc.__class__.__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise MatrixUnavailable(f"homeserver answered HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise MatrixError(
                response.status_code,
                body.get("errcode", ""),
                body.get("error", response.text[:200]),
            )
        if raw:
            return response
        return response.json() if response.content else {}

    # -- accounts ---------------------------------------------------------------------------
    def admin_register(self, shared_secret: str, username: str, password: str) -> dict:
        """Synapse's shared-secret registration (`registration_shared_secret`)."""
        path = "/_synapse/admin/v1/register"
        nonce = self.request("GET", path)["nonce"]
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"notadmin"])
        )
        body = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        }
        return self.request("POST", path, json=body)

    def appservice_register(self, localpart: str) -> None:
        """Register a user in our appservice namespace; an existing one is fine."""
        try:
            self.request(
                "POST",
                "/_matrix/client/v3/register",
                json={"type": "m.login.application_service", "username": localpart},
            )
        except MatrixError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise

    def login_password(self, user_id: str, password: str, device_id: str = "") -> dict:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": "Switchboard",
        }
        if device_id:
            body["device_id"] = device_id
        return self.request("POST", "/_matrix/client/v3/login", json=body)

    def login_appservice(self, user_id: str, device_id: str = "") -> dict:
        body = {
            "type": "m.login.application_service",
            "identifier": {"type": "m.id.user", "user": user_id},
            "initial_device_display_name": "Switchboard",
        }
        if device_id:
            body["device_id"] = device_id
        return self.request("POST", "/_matrix/client/v3/login", json=body)

    # -- rooms ------------------------------------------------------------------------------
    def create_room(self, invite: list[str], *, is_direct: bool = True, name: str = "") -> str:
        body: dict[str, Any] = {"preset": "private_chat", "is_direct": is_direct, "invite": invite}
        if name:
            body["name"] = name
        return self.request("POST", "/_matrix/client/v3/createRoom", json=body)["room_id"]

    def join(self, room_id: str) -> None:
        self.request("POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", json={})

    def joined_members(self, room_id: str) -> set[str]:
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members"
        return set((self.request("GET", path).get("joined") or {}).keys())

    def wait_for_member(self, room_id: str, user_id: str, timeout: float = 15.0) -> bool:
        """Bounded wait until `user_id` joined (a bridge only hears rooms its bot is in)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if user_id in self.joined_members(room_id):
                return True
            time.sleep(0.1)
        return False

    def room_state(self, room_id: str) -> list[dict]:
        return self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state")

    def send_event(
        self, room_id: str, event_type: str, content: dict, txn_id: str | None = None
    ) -> str:
        txn_id = txn_id or f"sb-{secrets.token_hex(8)}"
        path = (
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/"
            f"{quote(event_type, safe='')}/{quote(txn_id, safe='')}"
        )
        return self.request("PUT", path, json=content)["event_id"]

    def send_text(self, room_id: str, text: str, txn_id: str | None = None) -> str:
        return self.send_event(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}, txn_id
        )

    def messages(self, room_id: str, *, start: str = "", direction: str = "b", limit: int = 100):
        params = {"dir": direction, "limit": limit}
        if start:
            params["from"] = start
        return self.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages", params=params
        )

    # -- media ------------------------------------------------------------------------------
    def upload(self, data: bytes, content_type: str, filename: str) -> str:
        response = self.request(
            "POST",
            "/_matrix/media/v3/upload",
            params={"filename": filename},
            data=data,
            headers={"Content-Type": content_type or "application/octet-stream"},
            timeout=max(self.timeout, 120),
        )
        return response["content_uri"]

    def download(self, mxc: str) -> bytes:
        """Authenticated media (Synapse ≥ 1.111 refuses the old unauthenticated endpoints)."""
        return self.download_media(mxc)[0]

    def download_media(self, mxc: str) -> tuple[bytes, str]:
        """The bytes of `mxc` and the Content-Type the media repository gave them."""
        if not mxc.startswith("mxc://"):
            raise MatrixError(400, "M_INVALID_PARAM", f"not an mxc URI: {mxc[:80]}")
        server, _, media_id = mxc[len("mxc://") :].partition("/")
        response = self.request(
            "GET",
            f"/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}",
            raw=True,
            timeout=max(self.timeout, 120),
        )
        return response.content, response.headers.get("Content-Type", "")


def appservice_client(config: MatrixConfig | None = None, as_user_id: str = "") -> MatrixClient:
    config = config or get_config()
    return MatrixClient(
        config.homeserver_url, config.secrets.get("as_token", ""), as_user_id=as_user_id
    )
