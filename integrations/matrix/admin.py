"""Admin: Matrix settings (superusers only, secrets write-only) and managers' connections."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from .models import (
    BackfillJob,
    MatrixConnection,
    MatrixRoom,
    MatrixSettings,
    WhatsAppNumber,
)
from .numbers import pretty_phone

# Stored secret key → (label staff read, where the value comes from).
SECRETS = {
    "registration_shared_secret": (
        "Registration shared secret",
        "Synapse's registration_shared_secret (for the admin registration sign-in)",
    ),
    "as_token": ("Appservice token", "as_token of Switchboard's appservice registration"),
    "hs_token": ("Homeserver token", "hs_token of Switchboard's appservice registration"),
    "provisioning_secret": (
        "Bridge provisioning secret",
        "mautrix-whatsapp's provisioning.shared_secret",
    ),
}
SECRET_FIELDS = {name: purpose for name, (_label, purpose) in SECRETS.items()}


def _secret_field(name: str) -> forms.CharField:
    return forms.CharField(
        label=SECRETS[name][0],
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=SECRET_FIELDS[name],
    )


class MatrixSettingsForm(forms.ModelForm):
    """Secrets are write-only: blank keeps the stored value, nothing is ever shown back."""

    registration_shared_secret = _secret_field("registration_shared_secret")
    as_token = _secret_field("as_token")
    hs_token = _secret_field("hs_token")
    provisioning_secret = _secret_field("provisioning_secret")
    clear_secrets = forms.MultipleChoiceField(
        required=False,
        choices=[(name, label) for name, (label, _purpose) in SECRETS.items()],
        widget=forms.CheckboxSelectMultiple,
        label="Remove stored secrets",
        help_text="Tick a secret to remove its stored value.",
    )

    class Meta:
        model = MatrixSettings
        fields = [
            "whatsapp_mode",
            "homeserver_url",
            "server_name",
            "auth_mode",
            "bridge_bot_user_id",
            "appservice_id",
        ]
        labels = {
            "whatsapp_mode": "WhatsApp mode",
            "channel": "WhatsApp channel",
            "homeserver_url": "Homeserver URL",
            "server_name": "Server name",
            "auth_mode": "Sign-in method",
            "bridge_bot_user_id": "Bridge bot user ID",
            "appservice_id": "Appservice ID",
        }
        help_texts = {
            "channel": "The channel every Matrix conversation is stored in (made when first "
            "needed).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.secrets if self.instance and self.instance.pk else {}
        for name, label in SECRET_FIELDS.items():
            state = "set — leave blank to keep" if stored.get(name) else "not set"
            self.fields[name].help_text = f"{label} ({state})"

    def save(self, commit=True):
        instance = super().save(commit=False)
        secrets = dict(instance.secrets or {})
        for name in self.cleaned_data.get("clear_secrets") or []:
            secrets.pop(name, None)
        for name in SECRET_FIELDS:
            value = self.cleaned_data.get(name)
            if value:
                secrets[name] = value
        instance.secrets = secrets
        if commit:
            instance.save()
        return instance


class SuperuserOnly:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(MatrixSettings)
class MatrixSettingsAdmin(SuperuserOnly, admin.ModelAdmin):
    """One object (pk=1): the list opens its form directly (the add form until it exists)."""

    form = MatrixSettingsForm

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if MatrixSettings.objects.filter(pk=1).exists():
            return redirect("admin:integrations_matrixsettings_change", 1)
        if self.has_add_permission(request):
            return redirect("admin:integrations_matrixsettings_add")
        raise PermissionDenied

    def response_change(self, request, obj):
        # "Save" goes back to the form (the list is the form), with Django's message.
        if "_save" in request.POST:
            request.POST = request.POST.copy()
            request.POST["_continue"] = "1"
        return super().response_change(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_save" in request.POST:
            request.POST = request.POST.copy()
            request.POST["_continue"] = "1"
        return super().response_add(request, obj, post_url_continue)

    def has_add_permission(self, request):
        return request.user.is_superuser and not MatrixSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        return [
            ("WhatsApp", {"fields": ["whatsapp_mode"]}),
            (
                "Homeserver",
                {
                    "fields": [
                        "homeserver_url",
                        "server_name",
                        "auth_mode",
                        "bridge_bot_user_id",
                        "appservice_id",
                    ]
                },
            ),
            ("Secrets (write-only)", {"fields": [*SECRET_FIELDS, "clear_secrets"]}),
        ]


@admin.register(MatrixConnection)
class MatrixConnectionAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["user", "matrix_user_id", "state", "phone", "last_error", "last_synced_at"]
    list_filter = ["state"]
    search_fields = ["user__username", "matrix_user_id", "phone"]
    readonly_fields = [
        "user",
        "matrix_user_id",
        "device_id",
        "management_room_id",
        "state",
        "phone",
        "last_error",
        "qr_event_id",
        "qr_updated_at",
        "qr_refreshes",
        "login_started_at",
        "sync_next_batch",
        "last_synced_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["secrets", "qr_data", "qr_mxc"]

    def has_add_permission(self, request):
        return False


@admin.register(MatrixRoom)
class MatrixRoomAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["room_id", "kind", "connection", "channel", "chat_jid", "receiver", "is_group"]
    list_filter = ["kind", "is_group"]
    search_fields = ["room_id", "chat_jid"]


@admin.register(WhatsAppNumber)
class WhatsAppNumberAdmin(SuperuserOnly, admin.ModelAdmin):
    """Each connected number and its channel; teams are changed on the channel (the link)."""

    list_display = ["number", "owner", "channel_link", "connected", "created_at"]
    list_select_related = ["connection__user", "channel"]
    search_fields = ["phone", "connection__user__username", "channel__name"]
    readonly_fields = ["connection", "phone", "channel", "created_at"]

    @admin.display(description="number", ordering="phone")
    def number(self, obj: WhatsAppNumber) -> str:
        return pretty_phone(obj.phone) or "—"

    @admin.display(description="owner", ordering="connection__user__username")
    def owner(self, obj: WhatsAppNumber):
        return obj.connection.user

    @admin.display(description="channel (re-team or share it there)")
    def channel_link(self, obj: WhatsAppNumber) -> str:
        url = reverse("admin:communications_channel_change", args=[obj.channel_id])
        return format_html('<a href="{}">{}</a>', url, obj.channel.name)

    @admin.display(description="connected", boolean=True)
    def connected(self, obj: WhatsAppNumber) -> bool:
        return obj.is_connected

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BackfillJob)
class BackfillJobAdmin(SuperuserOnly, admin.ModelAdmin):
    """Read-only: jobs are started from the API or `manage.py matrix_backfill`."""

    list_display = [
        "pk",
        "room",
        "conversation",
        "state",
        "phase",
        "events_processed",
        "events_total",
        "messages_stored",
        "attempt",
        "requested_by",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    list_filter = ["state"]
    search_fields = ["room__room_id", "error"]
    list_select_related = ["room", "conversation", "requested_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
