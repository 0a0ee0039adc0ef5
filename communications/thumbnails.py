"""Previews rendered in the worker: a PDF's first page as a small PNG (pypdfium2 + Pillow).

Queued once the attachment's file is written (files.py); the task stores the PNG through
services.attachments.record_thumbnail, which announces the message again so open pages show
the preview. A PDF that cannot be rendered (encrypted, broken) just keeps its download link.
"""

import io
import logging

from django.db import transaction

logger = logging.getLogger(__name__)

PREVIEWABLE = frozenset({"application/pdf"})
THUMBNAIL_WIDTH = 320
MAX_SOURCE_BYTES = 50 * 1024 * 1024


def queue_thumbnail_if_previewable(attachment_id: int, mime_type: str) -> None:
    if (mime_type or "").split(";")[0].strip().lower() not in PREVIEWABLE:
        return
    from .tasks import make_thumbnail

    def publish():
        try:
            make_thumbnail.delay(attachment_id)
        except Exception:  # the broker is down: the file is there, the preview is a nicety
            logger.warning("preview of attachment %s not queued", attachment_id, exc_info=True)

    transaction.on_commit(publish)


def render_pdf_first_page(path: str, width: int = THUMBNAIL_WIDTH) -> bytes:
    """PNG bytes of the first page, `width` pixels wide. Raises ValueError when the file is
    not a PDF pdfium can open."""
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise ValueError(f"not a readable PDF: {exc}") from exc
    try:
        if len(document) == 0:
            raise ValueError("the PDF has no pages")
        page = document[0]
        page_width = page.get_width() or 1
        image = page.render(scale=width / page_width).to_pil()
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()
    finally:
        document.close()
