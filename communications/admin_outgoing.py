"""Outgoing webhooks in the admin: subscriptions (the secret write-only) and their delivery log
with the "redeliver" action (communications/services/outgoing_webhooks.py)."""

from django import forms
from django.contrib import admin, messages

from .models import OutgoingWebhookAttempt, OutgoingWebhookDelivery, OutgoingWebhookSubscription
from .services import outgoing_webhooks


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=[(t, t) for t in OutgoingWebhookSubscription.EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the current one (a new subscription gets a "
        "generated secret, shown once after saving).",
    )

    class Meta:
        model = OutgoingWebhookSubscription
        fields = ["name", "url", "events", "is_active"]


@admin.register(OutgoingWebhookSubscription)
class OutgoingWebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["name", "url", "is_active", "disabled_reason", "consecutive_failures"]
    list_filter = ["is_active"]
    readonly_fields = ["disabled_reason", "disabled_at", "consecutive_failures", "failing_since"]
    actions = ["enable_again"]

    def save_model(self, request, obj, form, change):
        secret = form.cleaned_data.get("signing_secret")
        generated = not secret and not obj.signing_secret
        if secret or generated:
            obj.secrets = {"signing_secret": secret or outgoing_webhooks.new_secret()}
        if change and "is_active" in form.changed_data and obj.is_active:
            obj.disabled_reason, obj.disabled_at = "", None
            obj.consecutive_failures, obj.failing_since = 0, None
        super().save_model(request, obj, form, change)
        if generated:
            self.message_user(
                request,
                f"Signing secret (shown once): {obj.signing_secret}",
                level=messages.WARNING,
            )

    @admin.action(description="Enable again (clears the failing streak)")
    def enable_again(self, request, queryset):
        for subscription in queryset:
            outgoing_webhooks.enable(subscription)
        self.message_user(request, f"{queryset.count()} subscriptions enabled.")


class AttemptInline(admin.TabularInline):
    model = OutgoingWebhookAttempt
    fields = ["started_at", "status_code", "latency_ms", "ok", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutgoingWebhookDelivery)
class OutgoingWebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: each event for each subscription with its attempts. Read-only; staff
    redeliver (the receiver gets the same event id and deduplicates)."""

    list_display = [
        "id",
        "created_at",
        "subscription",
        "event_type",
        "event_id",
        "conversation_id",
        "state",
        "attempts",
        "last_status_code",
        "delivered_at",
    ]
    list_filter = ["state", "event_type", "subscription"]
    list_select_related = ["subscription"]
    search_fields = ["=event_id", "=conversation_id"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["redeliver"]
    inlines = [AttemptInline]
    fields = [
        "subscription",
        "event_type",
        "event_id",
        "conversation_id",
        "created_at",
        "state",
        "attempts",
        "next_attempt_at",
        "give_up_after",
        "last_status_code",
        "last_error",
        "delivered_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver selected events (same event id)")
    def redeliver(self, request, queryset):
        count = outgoing_webhooks.redeliver(queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} deliveries queued to be sent again.")
