"""Saved views: a manager's named combination of the inbox list's filters (issue 14 item 8)."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from crm.models import Team


class SavedView(models.Model):
    """Filters of the inbox list under a name, private to its owner or shared with one of the
    owner's teams. `filters` holds only the keys of selectors.VIEW_FILTERS, validated and in
    canonical form (services.clean_filters): the list and the live count read them alike."""

    name = models.CharField(max_length=80)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    # Shared with this team's members (the owner's team); empty: private to the owner. A team
    # that is deleted leaves its views private.
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="saved_views",
        help_text="shared with this team's members; empty: only the owner sees it",
    )
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"status": "open", "assignee": "me", "label": 3, "unread": true}',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="saved_view_name_once_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name
