"""Secrets at rest: Fernet with keys derived from settings.FIELD_ENCRYPTION_KEYS."""

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    derived = [
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys
    ]
    return MultiFernet(derived)


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


class EncryptedJSONField(models.TextField):
    """A dict of secrets, stored as one Fernet token; plain dict in Python."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt_text(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        return json.loads(decrypt_text(value))

    def get_prep_value(self, value):
        return encrypt_text(json.dumps(value or {}, sort_keys=True))
