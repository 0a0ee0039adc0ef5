from django.utils.functional import SimpleLazyObject

from .access import can_view_reports


def reports_link(request):
    """`can_view_reports` for the top bar's Reports link, evaluated only where it is shown."""
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"can_view_reports": SimpleLazyObject(lambda: can_view_reports(user))}
