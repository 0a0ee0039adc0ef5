"""Secrets at rest: Fernet with keys derived from settings.FIELD_ENCRYPTION_KEYS.

Each configured key is stretched with HKDF-SHA256 into a Fernet key; the first configured key
encrypts, every key decrypts. Ciphertexts written before HKDF (the key was a bare SHA-256 of
the setting) still decrypt, so existing data keeps working; `manage.py rotate_secrets`
re-encrypts every encrypted field with the first key (docs/OPS.md, "Rotating secrets").
"""

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

# Fixed, public KDF inputs: they separate this use of the key material from any other.
HKDF_SALT = b"switchboard.field-encryption"
HKDF_INFO = b"fernet-key-v1"


def derive_fernet_key(secret: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _legacy_fernet_key(secret: str) -> bytes:
    """The derivation before HKDF; kept for decryption only."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ValueError("FIELD_ENCRYPTION_KEYS is empty")
    # MultiFernet encrypts with the first and tries all in order to decrypt.
    derived = [Fernet(derive_fernet_key(key)) for key in keys]
    derived += [Fernet(_legacy_fernet_key(key)) for key in keys]
    return MultiFernet(derived)


def fernet() -> MultiFernet:
    return _fernet(tuple(key for key in settings.FIELD_ENCRYPTION_KEYS if key))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def is_current(token: str) -> bool:
    """Encrypted with the first key's HKDF derivation (nothing to rotate)?"""
    keys = [key for key in settings.FIELD_ENCRYPTION_KEYS if key]
    try:
        Fernet(derive_fernet_key(keys[0])).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


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
