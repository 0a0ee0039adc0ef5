"""Admin: an email channel's mailbox settings (passwords write-only) and "test connection"."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from crm.jobs import JobBusy

from .connections import test_connection
from .import_job import start_import
from .models import EmailAccount, MailboxState

SECRET_FIELDS = {
    "imap_password": "IMAP password (or app password)",
    "smtp_password": "SMTP password (or app password)",
}


class EmailAccountForm(forms.ModelForm):
    """Passwords are write-only: blank keeps the stored value, nothing is ever shown back."""

    imap_password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    smtp_password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))

    class Meta:
        model = EmailAccount
        fields = [
            "channel",
            "from_address",
            "from_name",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_user",
            "imap_folder",
            "polling_enabled",
            "poll_interval_seconds",
            "subject_thread_days",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_user",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.secrets if self.instance and self.instance.pk else {}
        for name, label in SECRET_FIELDS.items():
            state = "set — leave blank to keep" if stored.get(name) else "not set"
            self.fields[name].help_text = f"{label} ({state})"

    def save(self, commit=True):
        instance = super().save(commit=False)
        secrets = dict(instance.secrets or {})
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(name):
                secrets[name] = self.cleaned_data[name]
        instance.secrets = secrets
        if commit:
            instance.save()
        return instance


class MailboxStateInline(admin.TabularInline):
    model = MailboxState
    extra = 0
    can_delete = False
    readonly_fields = ["folder", "uidvalidity", "last_uid", "messages_imported", "updated_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EmailAccount)
class EmailAccountAdmin(admin.ModelAdmin):
    form = EmailAccountForm
    list_display = [
        "from_address",
        "channel",
        "polling_enabled",
        "last_polled_at",
        "last_poll_error",
    ]
    readonly_fields = ["last_polled_at", "last_poll_error"]
    inlines = [MailboxStateInline]
    actions = ["check_connection", "import_mailbox"]
    fieldsets = [
        (None, {"fields": ["channel", "from_address", "from_name"]}),
        (
            "Receiving (IMAP)",
            {
                "fields": [
                    "imap_host",
                    "imap_port",
                    "imap_security",
                    "imap_user",
                    "imap_password",
                    "imap_folder",
                    "polling_enabled",
                    "poll_interval_seconds",
                    "subject_thread_days",
                ]
            },
        ),
        (
            "Sending (SMTP)",
            {"fields": ["smtp_host", "smtp_port", "smtp_security", "smtp_user", "smtp_password"]},
        ),
        ("Last poll", {"fields": ["last_polled_at", "last_poll_error"]}),
    ]

    @admin.action(description="Test connection (log in to IMAP and SMTP)")
    def check_connection(self, request, queryset):
        for account in queryset.select_related("channel"):
            for line in test_connection(account):
                level = messages.SUCCESS if ": OK" in line else messages.ERROR
                self.message_user(request, f"{account.from_address} — {line}", level)

    @admin.action(description="Import the whole mailbox now (a job with progress)")
    def import_mailbox(self, request, queryset):
        for account in queryset.select_related("channel"):
            try:
                job = start_import(account, request.user)
            except JobBusy as busy:
                job, verb, level = busy.job, "is already", messages.WARNING
            else:
                verb, level = "queued:", messages.SUCCESS
            url = reverse("admin:crm_job_change", args=[job.pk])
            self.message_user(
                request,
                format_html(
                    '{} — import {} <a href="{}">job #{}</a> (progress there)',
                    account.from_address,
                    verb,
                    url,
                    job.pk,
                ),
                level,
            )
