from django.contrib import admin

from .models import NotificationPreference, PushSubscription


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "level", "sound", "updated_at")
    list_filter = ("level", "sound")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Devices are subscribed from the inbox; staff can only look and remove."""

    list_display = ("user", "user_agent", "created_at", "last_success_at", "last_failure")
    search_fields = ("user__username", "user_agent")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "endpoint",
        "p256dh",
        "auth",
        "user_agent",
        "created_at",
        "last_success_at",
        "last_failure_at",
        "last_failure",
    )

    def has_add_permission(self, request):
        return False
