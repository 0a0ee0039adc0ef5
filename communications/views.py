"""Media served to the inbox: signed link + the viewer's access, with byte ranges."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.views.decorators.http import require_GET

from .access import can_see_channel
from .media import attachment_id_from_token, serve_file_with_range
from .models import Attachment


@require_GET
@login_required
def attachment_media(request, token: str):
    attachment = (
        Attachment.objects.select_related("message")
        .filter(pk=attachment_id_from_token(token))
        .first()
    )
    if attachment is None or not can_see_channel(request.user, attachment.message.channel_id):
        raise Http404("attachment not found")
    if not attachment.file:
        raise Http404("the file of this attachment has not been downloaded")
    return serve_file_with_range(
        request, attachment.file.path, attachment.mime_type, attachment.filename
    )
