"""Attachment files are written to their place only once the row naming them is committed.

A file written inside a transaction that then rolls back (a unique-constraint race, a
database error, a rejected send) would stay on disk with no row pointing at it. So the name
is chosen now and stored in the row; the bytes are written by an on-commit callback, which
runs before the callbacks registered after it (the message's realtime event): nobody hears
of a message before its file is in place. A rollback discards the callback, and no file is
ever written.
"""

import logging
import os
import uuid

from django.db import transaction

from .models import Attachment

logger = logging.getLogger(__name__)


def store_after_commit(attachment: Attachment, content, filename: str) -> None:
    """Give `attachment` a unique file name now and write `content` (a Django `File`) after
    the surrounding transaction commits. Call inside `transaction.atomic()`, before saving
    the row."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("store_after_commit needs a transaction to wait for")
    base = os.path.basename(filename or "attachment")[:120] or "attachment"
    # A fresh folder per file: the name is free without asking the disk, so the row can
    # carry it before the file exists.
    name = attachment.file.field.generate_filename(attachment, f"{uuid.uuid4().hex}/{base}")
    attachment.file.name = name
    storage = attachment.file.storage
    transaction.on_commit(lambda: _write(storage, name, content))


def _write(storage, name: str, content) -> None:
    # The caller's transaction may have saved no row after all (a repeated client_id).
    row = Attachment.objects.filter(file=name).values_list("id", "mime_type").first()
    if row is None:
        return
    try:
        stored = storage.save(name, content)
    except OSError as exc:
        logger.exception("attachment file %s could not be written", name)
        Attachment.objects.filter(file=name).update(
            file="",
            download_state=Attachment.DownloadState.FAILED,
            download_error=f"the file could not be stored: {exc.strerror or exc}",
        )
        return
    if stored != name:
        Attachment.objects.filter(file=name).update(file=stored)
    from .thumbnails import queue_thumbnail_if_previewable

    queue_thumbnail_if_previewable(*row)
