"""Media URLs: one builder, signed and expiring; one view, permission-checked, with Range.

Customers and uploaders choose an attachment's MIME type, so it is never trusted to decide
how a browser treats the bytes: only the allow-list below is served inline (PDF only inside
a CSP sandbox), everything else is a download, every answer says `nosniff` and carries a
CSP that forbids script. nginx's X-Accel location repeats the headers (nginx/switchboard.conf).
"""

import mimetypes
import os
import re
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header

from .models import Attachment

MEDIA_URL_MAX_AGE = 6 * 3600
_signer = signing.TimestampSigner(salt="switchboard.media")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

# Types a browser renders as media, never as a document that runs script. No SVG: it is XML
# with <script>. Anything not listed here is sent as an attachment (a download).
INLINE_MIME_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "video/3gpp",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/ogg",
        "audio/opus",
        "audio/wav",
        "audio/webm",
        "audio/amr",
        "audio/x-m4a",
    }
)
# Shown inline only in a sandbox (no script, no same-origin access): the viewer still opens it.
SANDBOXED_INLINE_MIME_TYPES = frozenset({"application/pdf"})
# Every media answer: nothing in it may run script or load anything; `sandbox` gives a
# document opened from here an opaque origin even if a browser ignored the rest.
MEDIA_CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
)


def media_headers(mime_type: str, filename: str) -> dict[str, str]:
    """Content-Type, Content-Disposition, nosniff and CSP for serving `mime_type`."""
    content_type = _clean_mime_type(mime_type) or _guess(filename)
    inline = content_type in INLINE_MIME_TYPES or content_type in SANDBOXED_INLINE_MIME_TYPES
    return {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition_header(not inline, filename or "attachment"),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": MEDIA_CSP,
    }


def _clean_mime_type(mime_type: str) -> str:
    value = (mime_type or "").split(";", 1)[0].strip().lower()
    # A type/subtype token and nothing else; a header-breaking value is no type at all.
    return (
        value
        if re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", value)
        else ""
    )


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename or "")[0] or "application/octet-stream"


def attachment_url(attachment: Attachment) -> str:
    token = _signer.sign(str(attachment.pk))
    return reverse("attachment-media", kwargs={"token": token})


def avatar_url(contact_id: int, avatar) -> str:
    """The URL of a contact's stored picture ("" without one). It names the file, whose name
    changes with the picture, so browsers may keep it (communications/views.py contact_avatar);
    access is checked on every request, like attachments'."""
    name = getattr(avatar, "name", avatar) or ""
    if not name:
        return ""
    return reverse(
        "contact-avatar", kwargs={"contact_id": contact_id, "name": os.path.basename(name)}
    )


def attachment_id_from_token(token: str) -> int:
    """The attachment id a URL token names; Http404 when forged or expired."""
    try:
        return int(_signer.unsign(token, max_age=MEDIA_URL_MAX_AGE))
    except (signing.BadSignature, ValueError) as exc:
        raise Http404("media link is invalid or has expired") from exc


def serve_file_with_range(request, path: str, content_type: str, filename: str) -> HttpResponse:
    """A file response that honours one HTTP byte range (206), which video players need.

    Every answer (whole, partial, 416, X-Accel) carries the headers of `media_headers`."""
    headers = media_headers(content_type, filename)
    response = _file_response(request, path, headers["Content-Type"])
    for name, value in headers.items():
        response[name] = value
    return response


def _file_response(request, path: str, content_type: str) -> HttpResponse:
    accel = _x_accel_response(path, content_type)
    if accel is not None:
        return accel
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:  # the row outlived its file (a restore, a cleaned disk)
        raise Http404("the file is missing from storage") from None
    range_header = request.headers.get("Range", "")
    match = _RANGE.match(range_header.strip()) if range_header else None
    if not match:
        response = FileResponse(open(path, "rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        response["Content-Length"] = str(size)
        return response
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last or 0), 0), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    length = end - start + 1

    def chunks(chunk_size: int = 64 * 1024):
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = length
            while remaining > 0:
                data = handle.read(min(chunk_size, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    return response


def _x_accel_response(path: str, content_type: str) -> HttpResponse | None:
    """With MEDIA_X_ACCEL, nginx sends the file (and its ranges) from an internal location.

    Only for files under MEDIA_ROOT; the access check has already been made by the view.
    """
    if not getattr(settings, "MEDIA_X_ACCEL", False):
        return None
    root = os.path.realpath(settings.MEDIA_ROOT)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        return None
    relative = os.path.relpath(real, root).replace(os.sep, "/")
    response = HttpResponse(content_type=content_type)
    response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_PREFIX.rstrip("/") + "/" + quote(relative)
    return response
