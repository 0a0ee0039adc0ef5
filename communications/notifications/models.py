"""Per-manager notification settings and the Web Push subscriptions of their devices."""

from django.conf import settings
from django.db import models


class NotificationPreference(models.Model):
    """What a manager wants to hear about. A manager without a row has the defaults."""

    class Level(models.TextChoices):
        ALL = "all", "All new messages in my teams' conversations"
        MINE = "mine", "Conversations assigned to me, and mentions"
        NONE = "none", "Nothing"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_preference",
    )
    level = models.CharField(
        "notify about",
        max_length=8,
        choices=Level.choices,
        default=Level.MINE,
        help_text="desktop notifications in the inbox and Web Push to the manager's devices",
    )
    sound = models.BooleanField(
        "play a sound",
        default=False,
        help_text="for new messages in the conversations the manager is notified about",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"{self.user}: {self.get_level_display()}"


DEFAULT_LEVEL = NotificationPreference.Level.MINE


class PushSubscription(models.Model):
    """One browser's Web Push subscription (PushSubscription.toJSON() of the Push API)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    # A push service URL is unique to one browser profile; the same browser signing in as
    # someone else takes the subscription over.
    endpoint = models.URLField(max_length=2000, unique=True)
    p256dh = models.CharField("browser public key (p256dh)", max_length=120)
    auth = models.CharField("auth secret", max_length=60)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.user} · {self.user_agent[:40] or self.endpoint[:40]}"

    def subscription_info(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}
