"""Error pages: the API answers in JSON even where no view matched (a path like
/api/v1/conversations/-1/ that no URL pattern accepts), as its schema promises. So do the
JSON endpoints outside /api/ (the backfill API), for any client that does not ask for HTML."""

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception=None):
    wants_html = "text/html" in request.headers.get("Accept", "")
    if request.path.startswith("/api/") or not wants_html:
        return JsonResponse({"detail": "not found"}, status=404)
    return page_not_found(request, exception)
