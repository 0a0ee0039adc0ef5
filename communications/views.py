"""Media served to the inbox and to API clients: signed link + the viewer's access, with Range.

A browser with a session uses the link as is; an API client sends `Authorization: Token <key>`
(the same token as the JSON API). Whoever may not see the attachment gets a 404; only a
browser navigating to the link without a session is sent to the login page.
"""

import os

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.views.decorators.http import require_GET
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from crm.models import Contact

from .access import can_see_channel, visible_channel_ids
from .api.authentication import TokenAuthentication
from .media import attachment_id_from_token, serve_file_with_range
from .models import Attachment

# A picture's URL names its file, and a new picture gets a new name: the browser may keep it.
# `private`: shared caches must not, it is served under the viewer's permission.
AVATAR_CACHE_CONTROL = "private, max-age=86400"


@require_GET
def attachment_media(request, token: str):
    user = _viewer(request)
    if user is None:
        if _is_browser_navigation(request):
            return redirect_to_login(request.get_full_path())
        raise Http404("attachment not found")
    attachment = (
        Attachment.objects.select_related("message")
        .filter(pk=attachment_id_from_token(token))
        .first()
    )
    if attachment is None or not can_see_channel(user, attachment.message.channel_id):
        raise Http404("attachment not found")
    if request.GET.get("variant") == "thumbnail":
        if not attachment.thumbnail:
            raise Http404("this attachment has no preview (yet)")
        return serve_file_with_range(request, attachment.thumbnail.path, "image/png", "preview.png")
    if not attachment.file:
        raise Http404("the file of this attachment has not been downloaded")
    return serve_file_with_range(
        request, attachment.file.path, attachment.mime_type, attachment.filename
    )


@require_GET
def contact_avatar(request, contact_id: int, name: str):
    """A contact's stored picture, to whoever may see one of the contact's conversations (the
    rule of the contact API and of attachments); 404 for anyone else and for an old name."""
    user = _viewer(request)
    if user is None:
        raise Http404("avatar not found")
    contacts = Contact.objects.filter(pk=contact_id)
    ids = visible_channel_ids(user)
    if ids is not None:
        contacts = contacts.filter(conversations__channel_id__in=ids)
    avatar = contacts.values_list("avatar", flat=True).first()
    if not avatar or os.path.basename(avatar) != name:
        raise Http404("avatar not found")
    storage = Contact._meta.get_field("avatar").storage
    if not storage.exists(avatar):
        raise Http404("avatar not found")
    response = serve_file_with_range(request, storage.path(avatar), "image/png", name)
    response["Cache-Control"] = AVATAR_CACHE_CONTROL
    return response


def _viewer(request):
    """The session's user, else the API token's; None when neither (a bad token is None too:
    the answer is the same 404 as for a link the client may not see)."""
    if get_authorization_header(request):
        try:
            found = TokenAuthentication().authenticate(request)
        except AuthenticationFailed:
            return None
        return found[0] if found else None
    return request.user if request.user.is_authenticated else None


def _is_browser_navigation(request) -> bool:
    return not get_authorization_header(request) and "text/html" in request.headers.get(
        "Accept", ""
    )
