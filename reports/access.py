"""Who may read the reports: staff, superusers, and anyone holding `reports.view_reports`
(directly or through a group, e.g. a "Team leads" group). Reports cover every channel and
team: the permission is given to people trusted with the whole picture."""

from django.contrib.auth.models import Permission
from django.db.models import Q

PERMISSION = "reports.view_reports"


def can_view_reports(user) -> bool:
    """One query for a non-staff user (remembered on the user object), none for staff."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    cached = getattr(user, "_can_view_reports", None)
    if cached is None:
        cached = (
            Permission.objects.filter(content_type__app_label="reports", codename="view_reports")
            .filter(Q(user=user) | Q(group__user=user))
            .exists()
        )
        user._can_view_reports = cached
    return cached
