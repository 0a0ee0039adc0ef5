"""Re-encrypt every secret at rest with the first of FIELD_ENCRYPTION_KEYS.

Rotation (docs/OPS.md): put the new key first in FIELD_ENCRYPTION_KEYS and keep the old ones
after it, restart, run this command, then remove the old keys. Safe to run again: rows already
encrypted with the first key are left alone, and each row is rewritten under a row lock.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from crm.encryption import EncryptedJSONField, decrypt_text, encrypt_text, is_current


def encrypted_fields():
    """(model, field) of every EncryptedJSONField of every installed model."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedJSONField):
                yield model, field


def rotate_field(model, field) -> tuple[int, int]:
    """Returns (rows checked, rows re-encrypted). Reads the stored tokens as text, so a row is
    re-encrypted as stored, without a round trip through the field's Python value."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(field.column)
    pk = connection.ops.quote_name(model._meta.pk.column)
    checked = rotated = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk} FROM {table} WHERE {column} <> '' ORDER BY {pk}")
        ids = [row[0] for row in cursor.fetchall()]
    for row_id in ids:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {pk} = %s FOR UPDATE", [row_id])
            found = cursor.fetchone()
            if found is None or not found[0]:
                continue
            checked += 1
            token = found[0]
            if is_current(token):
                continue
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",
                [encrypt_text(decrypt_text(token)), row_id],
            )
            rotated += 1
    return checked, rotated


class Command(BaseCommand):
    help = "Re-encrypt every secret at rest (encrypted fields) with the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        total = 0
        for model, field in encrypted_fields():
            checked, rotated = rotate_field(model, field)
            total += rotated
            self.stdout.write(
                f"{model._meta.label}.{field.name}: {rotated} of {checked} re-encrypted"
            )
        from integrations.matrix.settings_cache import invalidate

        invalidate()  # the cached Matrix settings hold a copy encrypted with the old key
        self.stdout.write(self.style.SUCCESS(f"{total} secret(s) re-encrypted with the first key"))
