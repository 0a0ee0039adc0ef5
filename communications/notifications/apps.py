from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "communications.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import checks  # noqa: F401  (registers the VAPID key check)
