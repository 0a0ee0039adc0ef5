"""Staff see the synced WhatsApp message templates and can sync a channel's again."""

from django.contrib import admin, messages

from .models import WhatsAppTemplate
from .templates import TemplateSyncError, sync_templates


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "category", "status", "channel", "synced_at"]
    list_filter = ["status", "category", "channel"]
    search_fields = ["name"]
    list_select_related = ["channel"]
    actions = ["sync_again"]

    # Meta owns templates: they are changed in WhatsApp Manager and synced, never edited here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Sync the templates of these channels from Meta now")
    def sync_again(self, request, queryset):
        channels = {template.channel for template in queryset.select_related("channel")}
        for channel in channels:
            try:
                count = sync_templates(channel)
            except TemplateSyncError as exc:
                self.message_user(request, f"{channel}: {exc.reason}", messages.ERROR)
                continue
            self.message_user(request, f"{channel}: {count} templates synced")
