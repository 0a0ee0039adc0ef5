from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from communications.admin import AuditedAdmin, ChangesAccessAdmin
from communications.models import Activity
from communications.services.activity import record_audit

from .models import Contact, ContactLabel, CustomAttributeDefinition, Job, Label, Order, Team


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "description", "created_at"]
    search_fields = ["name"]


class ContactLabelInline(admin.TabularInline):
    model = ContactLabel
    extra = 0
    fields = ["label"]


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0
    fields = ["number", "title", "status", "amount", "currency", "ordered_at"]


@admin.register(CustomAttributeDefinition)
class CustomAttributeDefinitionAdmin(admin.ModelAdmin):
    """The typed fields of every contact (text, number, date, list), edited on the contacts
    page (/contacts/<id>/) and through the API (custom_attributes)."""

    list_display = ["name", "key", "type", "options", "position"]
    list_editable = ["position"]
    search_fields = ["name", "key"]
    prepopulated_fields = {"key": ["name"]}


class ContactAdminForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = [
            "name",
            "phone",
            "email",
            "avatar_url",
            "username",
            "notes",
            "custom_attributes",
        ]

    def clean_custom_attributes(self):
        """The same validation as the contacts page and the API: each value of its type."""
        from communications.services.contacts import (
            ContactChangeRejected,
            attribute_definitions,
            clean_changes,
        )

        values = self.cleaned_data.get("custom_attributes") or {}
        if "custom_attributes" not in self.changed_data:
            return values  # untouched: no need to read the definitions
        try:
            _, cleaned = clean_changes({"custom_attributes": values}, attribute_definitions())
        except ContactChangeRejected as exc:
            raise forms.ValidationError(str(exc)) from exc
        return {key: value for key, value in (cleaned or {}).items() if value is not None}


@admin.register(Contact)
class ContactAdmin(AuditedAdmin):
    form = ContactAdminForm
    list_display = ["name", "phone", "email", "merged", "created_at"]
    actions = ["merge_two"]
    audit_subject = Activity.Subject.CONTACT
    search_fields = ["name", "=phone", "=email"]
    list_filter = ["labels"]
    inlines = [ContactLabelInline, OrderInline]
    show_full_result_count = False
    # The picture comes from the platform (R12, the background refresh), not from staff.
    exclude = ["avatar"]
    readonly_fields = ["picture", "merged"]

    @admin.display(description="merged into")
    def merged(self, contact):
        if contact.merged_into_id is None:
            return "—"
        url = reverse("admin:crm_contact_change", args=[contact.merged_into_id])
        return format_html('<a href="{}">contact #{}</a>', url, contact.merged_into_id)

    @admin.action(description="Merge the two selected contacts (into the older one)")
    def merge_two(self, request, queryset):
        from communications.services.merge import MergeConflict, MergeRejected, merge_contacts

        ids = sorted(queryset.values_list("pk", flat=True))
        if len(ids) != 2:
            self.message_user(request, "Select exactly two contacts to merge.", messages.ERROR)
            return
        try:
            merge_contacts(ids[0], ids[1], actor=request.user)
        except (MergeRejected, MergeConflict) as exc:
            self.message_user(request, f"Not merged: {exc}", messages.ERROR)
            return
        self.message_user(request, f"Contact #{ids[1]} merged into #{ids[0]}.", messages.SUCCESS)

    @admin.display(description="picture")
    def picture(self, contact):
        from communications.media import avatar_url

        url = avatar_url(contact.pk, contact.avatar)
        if not url:
            return "— (none from the platform yet)"
        return format_html('<img src="{}" width="64" height="64" alt="">', url)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "title", "contact", "status", "amount", "ordered_at"]
    list_filter = ["status"]
    list_select_related = ["contact"]
    search_fields = ["=number", "contact__name"]
    raw_id_fields = ["contact"]


@admin.register(Team)
class TeamAdmin(AuditedAdmin, ChangesAccessAdmin):
    list_display = ["name", "max_open_per_manager"]
    audit_subject = Activity.Subject.TEAM
    filter_horizontal = ["members"]


# A user's superuser flag, active flag and teams decide what their open inboxes may see.
admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class SwitchboardUserAdmin(AuditedAdmin, ChangesAccessAdmin, UserAdmin):
    """Django's user admin; saving a user makes their open inboxes re-read their access and
    is an audit row (never the password)."""

    audit_subject = Activity.Subject.USER

    def user_change_password(self, request, id, form_url=""):
        # The new password and its audit row commit together (Django's view is not atomic).
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        if request.path.endswith("/password/"):  # the fact only, never the password or hash
            record_audit(
                Activity.Verb.CHANGED,
                subject_type=self.audit_subject,
                subject_id=obj.pk,
                subject_repr=str(obj),
                before={},
                after={"password": "changed"},
                actor=request.user,
            )
        return super().log_change(request, obj, message)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Long jobs (imports, exports): read-only; started where their resource lives."""

    list_display = ["pk", "kind", "title", "state", "progress", "attempt", "requested_by"]
    list_display += ["created_at", "heartbeat_at", "finished_at"]
    list_filter = ["state", "kind"]
    search_fields = ["title", "lock_key", "error"]
    list_select_related = ["requested_by"]
    ordering = ["-id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
