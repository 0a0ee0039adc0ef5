"""Media URLs: one builder, signed and expiring; one view, permission-checked, with Range."""

import mimetypes
import os
import re
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse

from .models import Attachment

MEDIA_URL_MAX_AGE = 6 * 3600
_signer = signing.TimestampSigner(salt="switchboard.media")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def attachment_url(attachment: Attachment) -> str:
    token = _signer.sign(str(attachment.pk))
    return reverse("attachment-media", kwargs={"token": token})


def attachment_id_from_token(token: str) -> int:
    """The attachment id a URL token names; Http404 when forged or expired."""
    try:
        return int(_signer.unsign(token, max_age=MEDIA_URL_MAX_AGE))
    except (signing.BadSignature, ValueError) as exc:
        raise Http404("media link is invalid or has expired") from exc


def serve_file_with_range(request, path: str, content_type: str, filename: str) -> HttpResponse:
    """A file response that honours one HTTP byte range (206), which video players need."""
    content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    accel = _x_accel_response(path, content_type)
    if accel is not None:
        return accel
    size = os.path.getsize(path)
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
