"""Pre-aggregated daily rollups behind the reports (reports/rollups.py builds them).

A day is a calendar day in the project's TIME_ZONE. One `DailyRollup` per (day, channel,
team) and one `DailyManagerRollup` per (day, channel, team, manager) that had anything to
count; rebuilding a day deletes its rows and writes them again, so a rebuild is idempotent.
`team_id` is the conversation's team when the day was rolled up (no foreign key: a deleted
team's history stays). Durations are whole seconds, kept per conversation as JSON lists so
medians and percentiles over any range are exact, not estimated from bins."""

from django.conf import settings
from django.db import models

from communications.models import Channel


class DailyRollup(models.Model):
    day = models.DateField()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_index=False)
    team_id = models.BigIntegerField(null=True, blank=True)
    opened = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    # Seconds of each first response given that day / each first resolution that day.
    first_response_seconds = models.JSONField(default=list, blank=True)
    resolution_seconds = models.JSONField(default=list, blank=True)
    # 24 counts: inbound messages per hour of the day (local time).
    inbound_by_hour = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["day", "channel", "team_id"], name="rollup_day")]
        permissions = [("view_reports", "Can view the reports page and API")]

    def __str__(self) -> str:
        return f"{self.day} channel {self.channel_id} team {self.team_id}"


class DailyManagerRollup(models.Model):
    day = models.DateField()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_index=False)
    team_id = models.BigIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Conversations opened that day and assigned to the manager (when rolled up).
    assigned = models.PositiveIntegerField(default=0)
    # Status changes to "resolved" the manager made that day.
    resolved = models.PositiveIntegerField(default=0)
    # First responses the manager sent that day, in seconds.
    first_response_seconds = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["day", "channel", "team_id"], name="manager_rollup_day")]

    def __str__(self) -> str:
        return f"{self.day} user {self.user_id} channel {self.channel_id}"
