"""Matrix settings and the WhatsApp mode, read through the cache (no query per send).

`MatrixSettings.save()` invalidates; a warm read costs no query at all. The cached value is a
plain frozen snapshot, so nothing downstream can write through it by mistake.
"""

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from crm.encryption import decrypt_text, encrypt_text

CACHE_KEY = "switchboard:matrix-settings:v2"
CACHE_TIMEOUT = 300
WHATSAPP_MODE_ENV_DEFAULT = "classical"


@dataclass(frozen=True)
class MatrixConfig:
    whatsapp_mode: str
    homeserver_url: str = ""
    server_name: str = ""
    auth_mode: str = "admin_login"
    bridge_bot_user_id: str = ""
    appservice_id: str = "switchboard"
    # The secrets stay Fernet-encrypted in the cache (it may be a shared Redis).
    encrypted_secrets: str = ""

    @property
    def secrets(self) -> dict:
        if not self.encrypted_secrets:
            return {}
        return json.loads(decrypt_text(self.encrypted_secrets))

    @property
    def configured(self) -> bool:
        """Enough to talk to the homeserver: a URL, a server name and a way to authenticate."""
        if not (self.homeserver_url and self.server_name):
            return False
        if self.auth_mode == "appservice":
            return bool(self.secrets.get("as_token"))
        return bool(self.secrets.get("registration_shared_secret"))

    @property
    def bridge_bot(self) -> str:
        return self.bridge_bot_user_id or f"@whatsappbot:{self.server_name}"

    @property
    def hs_token(self) -> str:
        return self.secrets.get("hs_token", "")


def env_whatsapp_mode() -> str:
    mode = getattr(settings, "WHATSAPP_MODE", "") or WHATSAPP_MODE_ENV_DEFAULT
    return mode if mode in ("classical", "matrix") else WHATSAPP_MODE_ENV_DEFAULT


def get_config() -> MatrixConfig:
    config = cache.get(CACHE_KEY)
    if config is None:
        config = _load()
        cache.set(CACHE_KEY, config, CACHE_TIMEOUT)
    return config


def whatsapp_mode() -> str:
    return get_config().whatsapp_mode


def invalidate() -> None:
    cache.delete(CACHE_KEY)


def _load() -> MatrixConfig:
    from .models import MatrixSettings

    row = MatrixSettings.objects.filter(pk=1).first()
    if row is None:
        return MatrixConfig(whatsapp_mode=env_whatsapp_mode())
    return MatrixConfig(
        whatsapp_mode=row.whatsapp_mode or env_whatsapp_mode(),
        homeserver_url=row.homeserver_url.rstrip("/"),
        server_name=row.server_name,
        auth_mode=row.auth_mode,
        bridge_bot_user_id=row.bridge_bot_user_id,
        appservice_id=row.appservice_id,
        encrypted_secrets=encrypt_text(json.dumps(row.secrets)) if row.secrets else "",
    )
