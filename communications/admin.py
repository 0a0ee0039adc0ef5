"""Staff triage and settings in the Django admin.

Built to stay fast with millions of messages: no full-table counts on the big lists
(`show_full_result_count = False`, a paginator that does not count), related rows joined with
select_related, raw id widgets instead of giant dropdowns.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html

from crm.models import Label

from . import events, webhooks
from .channel_forms import HOURS_FIELDS, channel_form_for, fieldsets_for, settings_for
from .models import (
    Activity,
    Attachment,
    CannedResponse,
    Channel,
    ContactIdentity,
    Conversation,
    ConversationLabel,
    EarlyStatus,
    ManagerAvailability,
    Mention,
    Message,
    RealtimeEvent,
    WebhookDelivery,
)
from .providers import DeliveryError, provider_for
from .serializers import activity_payload
from .services.activity import audit_value, record_audit
from .services.assignment import requeue_after_commit
from .services.canned import placeholder_problem
from .services.conversations import (
    ConversationChangeRejected,
    assignee_rejection,
    bulk_update_conversations,
    team_rejection,
    update_conversation,
)
from .services.labels import bulk_change_conversation_labels
from .services.send import RETRYABLE_STATUSES, retry_failed_message


class EstimatedCountPaginator(Paginator):
    """Unfiltered lists of big tables use PostgreSQL's row estimate instead of COUNT(*)."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return super().count


_BLANK = (None, "", [], {})


class AuditedAdmin(admin.ModelAdmin):
    """Each add or change saved here is one audit row (communications/services/activity.py)
    in the save's transaction (the admin's changeform is atomic): the changed fields' before
    and after, never a password or a secret's value (only which secret keys were set)."""

    audit_subject: str = ""  # Activity.Subject

    def audit_secret_keys(self, form) -> list[str]:
        """The form fields that hold secrets: recorded by name when set, never by value."""
        return []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # after the many-to-many links
        secret_keys = self.audit_secret_keys(form)
        fields = [
            name
            for name in form.changed_data
            if name not in secret_keys and "password" not in name and name in form.fields
        ]
        before = {
            name: audit_value(form.get_initial_for_field(form.fields[name], name))
            for name in fields
            if change
        }
        after = {name: audit_value(form.cleaned_data.get(name)) for name in fields}
        for name in list(before):  # posted differently, cleaned to the same (blank = kept)
            if before[name] == after[name] or (before[name] in _BLANK and after[name] in _BLANK):
                del before[name], after[name]
        secrets_changed = sorted(key for key in secret_keys if form.cleaned_data.get(key))
        if secrets_changed:
            after["secrets_changed"] = secrets_changed
        if change and not after:
            return  # saved without a change: nothing to record
        record_audit(
            Activity.Verb.CHANGED if change else Activity.Verb.CREATED,
            subject_type=self.audit_subject,
            subject_id=form.instance.pk,
            subject_repr=str(form.instance),
            before=before,
            after=after,
            actor=request.user,
        )


class ChangesAccessAdmin(admin.ModelAdmin):
    """For what decides who sees which channel (channels, teams, users): once a save or a
    delete commits, open inboxes re-read their access (joined channels, a reload)."""

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # after the many-to-many links
        events.access_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        events.access_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        events.access_changed()


def register_channel_webhook(channel: Channel, public_url: str) -> tuple[bool, str]:
    """The admin's "Set up the webhook": the provider tells its platform where to deliver
    (its optional `register_webhook(public_url)` hook: Telegram setWebhook). Returns (ok,
    staff's words)."""
    try:
        register = getattr(provider_for(channel), "register_webhook", None)
        if register is None:
            return False, "this kind of channel has no webhook to set up from here"
        return True, register(public_url)
    except DeliveryError as exc:
        return False, exc.reason


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin, ChangesAccessAdmin):
    """Each kind shows only its own settings (channel_forms); the kind is chosen once, on add
    (`?kind=` picks it; a small script reloads the page when the select changes)."""

    list_display = ["name", "kind", "address", "is_active", "configuration", "secrets_set"]
    list_filter = ["kind", "is_active"]
    audit_subject = Activity.Subject.CHANNEL
    search_fields = ["name", "address"]
    filter_horizontal = ["teams"]
    # Through the channel's provider, where it offers the hook.
    actions = ["test_connection", "register_webhook"]

    class Media:
        js = ["admin_sb/channel_kind.js"]

    def _kind(self, request, obj) -> str | None:
        if obj is not None:
            return obj.kind
        kind = request.POST.get("kind") or request.GET.get("kind")
        return kind if kind in Channel.Kind.values else None

    def audit_secret_keys(self, form) -> list[str]:
        return list(form.kind_settings.secrets)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = channel_form_for(self._kind(request, obj))
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = fieldsets_for(self._kind(request, obj), adding=obj is None)
        if obj is not None or self._kind(request, obj):
            fieldsets.insert(
                1,
                (
                    "Auto-assignment",
                    {
                        "fields": ["auto_assignment", "assignment_team"],
                        "description": "New conversations go to the team's online managers "
                        "in turn (round robin) or to the least loaded (balanced), never over "
                        "a manager's cap (Teams, Manager availability).",
                    },
                ),
            )
            fieldsets.insert(
                2,
                (
                    "Business hours",
                    {
                        "fields": HOURS_FIELDS,
                        "description": "Times are in the channel's time zone. No hours at "
                        "all: always open. Outside them, the automatic reply (if any) answers "
                        "a customer's message once per closed period.",
                    },
                ),
            )
        kind_settings = settings_for(obj.kind) if obj is not None else None
        source = kind_settings.webhook_source if kind_settings else ""
        if source:
            url = request.build_absolute_uri(f"/webhooks/{source}/{obj.pk}/")
            fieldsets.append(
                (
                    "Webhook",
                    {
                        "fields": (),
                        "description": format_html(
                            "Webhook URL to paste into the platform's webhook settings: "
                            '<code class="webhook-url">{}</code><br>{}',
                            url,
                            kind_settings.webhook_note
                            or "with the verify token or secret set above.",
                        ),
                    },
                )
            )
        return fieldsets

    @admin.action(description="Set up the webhook at the platform")
    def register_webhook(self, request, queryset):
        # Where staff reach this admin is where the platform reaches us (behind the same host).
        public_url = request.build_absolute_uri("/").rstrip("/")
        for channel in queryset:
            ok, text = register_channel_webhook(channel, public_url)
            self.message_user(
                request, f"{channel}: {text}", messages.SUCCESS if ok else messages.ERROR
            )

    def get_readonly_fields(self, request, obj=None):
        return ["kind"] if obj is not None else []

    def get_changeform_initial_data(self, request):
        return {**super().get_changeform_initial_data(request), "kind": self._kind(request, None)}

    def response_add(self, request, obj, post_url_continue=None):
        # A new channel's settings are on its change page: go there rather than to the list.
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            request.POST = request.POST.copy()
            request.POST["_continue"] = "1"
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="configuration")
    def configuration(self, obj: Channel) -> str:
        from .providers import configuration_problems

        return "; ".join(p.text for p in configuration_problems(obj)) or "OK"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # What the channel's settings lack, said on the channel itself (managers see only
        # "not connected yet — ask an admin").
        if request.method == "GET":
            from .providers import configuration_problems

            channel = self.get_object(request, object_id)
            for problem in configuration_problems(channel) if channel else []:
                level = messages.ERROR if problem.blocks_replies else messages.WARNING
                self.message_user(request, problem.text, level)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        """One cheap authenticated call per channel (Graph `me`, Telegram `getMe`), through the
        provider's optional `check_connection` hook; its answer or failure said in plain words."""
        from .providers import DeliveryError, provider_for

        for channel in queryset:
            try:
                check = getattr(provider_for(channel), "check_connection", None)
                if check is None:
                    self.message_user(
                        request,
                        f"{channel}: this kind of channel has no connection test",
                        messages.WARNING,
                    )
                    continue
                self.message_user(request, f"{channel}: {check()}", messages.SUCCESS)
            except DeliveryError as exc:
                self.message_user(request, f"{channel}: {exc.reason}", messages.ERROR)

    @admin.display(description="secrets set")
    def secrets_set(self, obj: Channel) -> str:
        labels = {key: label for key, (label, _) in settings_for(obj.kind).secrets.items()}
        return ", ".join(sorted(labels.get(key, key) for key in obj.secrets)) or "—"


@admin.register(ManagerAvailability)
class ManagerAvailabilityAdmin(admin.ModelAdmin):
    """Who takes auto-assigned conversations now, and each manager's own cap."""

    list_display = ["user", "status", "set_automatically", "max_open_conversations"]
    list_display += ["last_socket_at", "updated_at"]
    list_editable = ["status", "max_open_conversations"]
    list_filter = ["status"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    raw_id_fields = ["user"]
    readonly_fields = ["set_automatically", "last_socket_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Staff setting a manager offline here counts as the manager's own choice.
        if "status" in form.changed_data:
            obj.set_automatically = False
        super().save_model(request, obj, form, change)
        if change and "status" in form.changed_data and obj.status == obj.Status.OFFLINE:
            requeue_after_commit([obj.user_id])


class ConversationAdminForm(forms.ModelForm):
    """The same assignment rule as the API: only someone (or a team) of the channel's teams."""

    class Meta:
        model = Conversation
        fields = ["channel", "assignee", "team"]  # the admin adds its own field list

    def clean(self):
        data = super().clean()
        conversation = Conversation(channel_id=data["channel"].pk) if data.get("channel") else None
        if conversation is None:
            return data
        assignee, team = data.get("assignee"), data.get("team")
        if assignee is not None and (reason := assignee_rejection(conversation, assignee)):
            self.add_error("assignee", f"{assignee} {reason}")
        if team is not None and (reason := team_rejection(conversation, team.pk)):
            self.add_error("team", f"{team} {reason}")
        if data.get("status") == Conversation.Status.SNOOZED and not data.get("snoozed_until"):
            self.add_error("snoozed_until", "a snoozed conversation needs a time to wake up")
        return data


def _cell(text: str, css: str = "sb-cell") -> str:
    """A list cell cut to its column with an ellipsis (changelist.css); the whole in a tooltip."""
    return format_html('<span class="{}" title="{}">{}</span>', css, text, text)


class ConversationActionForm(ActionForm):
    """The action bar's extra field: which label "Add label" / "Remove label" use."""

    label = forms.ModelChoiceField(Label.objects.all(), required=False, empty_label="(label)")


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """The audit log: read-only, newest first; filter by who, what, when and about what."""

    list_display = ["created_at", "actor_name", "verb", "subject_type", "subject_repr", "line"]
    # The actor filter lists the users (a small table), not the distinct actors of the log.
    list_filter = ["actor", "verb", "subject_type", "created_at"]
    search_fields = ["actor_name", "subject_repr"]
    fields = ["created_at", "actor_name", "verb", "subject_type", "subject_id", "subject_repr"]
    fields += ["conversation", "line", "before", "after"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="what happened")
    def line(self, obj) -> str:
        return activity_payload(obj)["text"]


class ActivityInline(admin.TabularInline):
    model = Activity
    extra = 0
    fields = ["created_at", "line"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    can_delete = False
    verbose_name_plural = "activity"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="what happened")
    def line(self, obj) -> str:
        return activity_payload(obj)["text"]


class ConversationLabelInline(admin.TabularInline):
    model = ConversationLabel
    extra = 0
    fields = ["label", "created_at"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "labels (change them from the inbox, the API or the actions)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """The triage list fits a 1440 px screen beside the admin's sidebar and filters: compact
    columns, long names cut with an ellipsis (tests/browser/test_admin_browser.py)."""

    form = ConversationAdminForm
    action_form = ConversationActionForm
    inlines = [ConversationLabelInline, ActivityInline]
    list_display = [
        "id",
        "customer",
        "channel_name",
        "state",
        "assignee_name",
        "team_name",
        "unread",
        "last_activity",
    ]
    list_display_links = ["id", "customer"]

    class Media:
        css = {"all": ["admin_sb/changelist.css"]}

    @admin.display(description="customer", ordering="contact__name")
    def customer(self, obj: Conversation) -> str:
        return _cell(str(obj.contact))

    @admin.display(description="channel", ordering="channel__name")
    def channel_name(self, obj: Conversation) -> str:
        return _cell(obj.channel.name)

    @admin.display(description="status", ordering="status")
    def state(self, obj: Conversation) -> str:
        if obj.merged_into_id is not None:
            return f"merged into #{obj.merged_into_id}"
        return obj.get_status_display() + (" · archived" if obj.is_archived else "")

    @admin.display(description="merged into")
    def merged_into_link(self, obj: Conversation) -> str:
        if obj.merged_into_id is None:
            return "—"
        url = reverse("admin:communications_conversation_change", args=[obj.merged_into_id])
        return format_html(
            '<a href="{}">conversation #{}</a> on {} (undo within {} hours of the merge: '
            "the inbox's line, or POST /api/v1/conversations/{}/unmerge/)",
            url,
            obj.merged_into_id,
            obj.merged_at and date_format(timezone.localtime(obj.merged_at), "DATETIME_FORMAT"),
            settings.SWITCHBOARD.get("MERGE_UNDO_HOURS", 24),
            obj.pk,
        )

    @admin.display(description="assignee", ordering="assignee__first_name")
    def assignee_name(self, obj: Conversation) -> str:
        if obj.assignee is None:
            return "—"
        return _cell(obj.assignee.get_full_name() or obj.assignee.get_username())

    @admin.display(description="team", ordering="team__name")
    def team_name(self, obj: Conversation) -> str:
        return _cell(obj.team.name) if obj.team else "—"

    @admin.display(description="unread", ordering="unread_count")
    def unread(self, obj: Conversation) -> int:
        return obj.unread_count

    @admin.display(description="last activity", ordering="last_message_at")
    def last_activity(self, obj: Conversation) -> str:
        local = timezone.localtime(obj.last_message_at)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            local.isoformat(),
            date_format(local, "DATETIME_FORMAT"),
            date_format(local, "j M, H:i"),
        )

    list_filter = ["status", "is_archived", "channel", "team", "assignee", "labels"]
    list_select_related = ["contact", "channel", "assignee", "team"]
    search_fields = ["=id", "contact__name", "contact__phone", "contact__email", "external_id"]
    raw_id_fields = ["contact", "assignee"]
    readonly_fields = ["external_id", "created_at", "updated_at", "last_inbound_at"]
    readonly_fields += ["merged_into_link"]
    ordering = ["-last_message_at", "-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = [
        "assign_to_me",
        "unassign",
        "resolve",
        "reopen",
        "archive",
        "unarchive",
        "add_label",
        "remove_label",
        "merge_two",
    ]

    @admin.action(description="Merge the two selected conversations (into the older one)")
    def merge_two(self, request, queryset):
        from .services.merge import MergeConflict, MergeRejected, merge_conversations

        ids = sorted(queryset.values_list("pk", flat=True))
        if len(ids) != 2:
            self.message_user(request, "Select exactly two conversations to merge.", messages.ERROR)
            return
        try:
            merge_conversations(ids[0], ids[1], actor=request.user, merge_contacts=True)
        except (MergeRejected, MergeConflict) as exc:
            self.message_user(request, f"Not merged: {exc}", messages.ERROR)
            return
        self.message_user(
            request, f"Conversation #{ids[1]} merged into #{ids[0]}.", messages.SUCCESS
        )

    def save_model(self, request, obj, form, change):
        """Edits of status, snooze, assignee, team and archive go through the service, like the
        inbox's: the same rules, one realtime event and the activity lines."""
        if not change:
            return super().save_model(request, obj, form, change)
        tracked = {
            "status": "status",
            "snoozed_until": "snoozed_until",
            "assignee": "assignee_id",
            "team": "team_id",
            "is_archived": "is_archived",
        }
        changes = {
            key: getattr(obj, key) for field, key in tracked.items() if field in form.changed_data
        }
        others = [f for f in form.changed_data if f not in tracked]
        with transaction.atomic():
            locked = (
                Conversation.objects.select_related("contact", "channel", "assignee")
                .select_for_update(of=("self",))
                .get(pk=obj.pk)
            )
            if others:
                for field in others:
                    setattr(locked, field, getattr(obj, field))
                locked.save(update_fields=[*others, "updated_at"])
            try:
                update_conversation(locked, changes=changes, actor=request.user)
            except ConversationChangeRejected as exc:  # the form's clean() checks these first
                transaction.set_rollback(True)
                self.message_user(request, f"Not saved: {exc}", messages.ERROR)

    @admin.action(description="Add the label chosen beside the action")
    def add_label(self, request, queryset):
        self._label_action(request, queryset, add=True)

    @admin.action(description="Remove the label chosen beside the action")
    def remove_label(self, request, queryset):
        self._label_action(request, queryset, add=False)

    def _label_action(self, request, queryset, *, add: bool) -> None:
        label = Label.objects.filter(pk=request.POST.get("label") or None).first()
        if label is None:
            self.message_user(
                request, "label: choose a label beside the action first.", messages.ERROR
            )
            return
        ids = list(queryset.values_list("pk", flat=True))
        changed = bulk_change_conversation_labels(
            ids, add=[label] if add else [], remove=[] if add else [label], actor=request.user
        )
        done = "added to" if add else "removed from"
        self.message_user(
            request, f"Label {label.name} {done} {changed} conversation(s).", messages.SUCCESS
        )

    def _bulk(self, request, queryset: QuerySet, label: str, **values) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = bulk_update_conversations(ids, actor=request.user, **values)
        self.message_user(request, f"{count} conversation(s) {label}.", messages.SUCCESS)

    @admin.action(description="Assign to me")
    def assign_to_me(self, request, queryset):
        if not request.user.is_superuser:
            outside = sorted(
                queryset.exclude(channel__teams__members=request.user).values_list("pk", flat=True)
            )
            if outside:
                ids = ", ".join(f"#{pk}" for pk in outside[:20])
                self.message_user(
                    request,
                    f"assignee: you are not a member of a team of the channel of conversation(s) "
                    f"{ids}; nothing was assigned.",
                    messages.ERROR,
                )
                return
        self._bulk(request, queryset, f"assigned to {request.user}", assignee=request.user)

    @admin.action(description="Unassign")
    def unassign(self, request, queryset):
        self._bulk(request, queryset, "unassigned", assignee=None)

    @admin.action(description="Resolve")
    def resolve(self, request, queryset):
        self._bulk(request, queryset, "resolved", status=Conversation.Status.RESOLVED)

    @admin.action(description="Reopen")
    def reopen(self, request, queryset):
        self._bulk(request, queryset, "reopened", status=Conversation.Status.OPEN)

    @admin.action(description="Archive")
    def archive(self, request, queryset):
        self._bulk(request, queryset, "archived", is_archived=True)

    @admin.action(description="Unarchive")
    def unarchive(self, request, queryset):
        self._bulk(request, queryset, "unarchived", is_archived=False)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ["filename", "mime_type", "size", "file", "provider_ref"]
    readonly_fields = fields


class FailedFilter(admin.SimpleListFilter):
    """The sends staff should look at first (served by partial indexes): failed ones, and
    unknown ones (the platform may or may not have them: check, then retry or leave)."""

    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [
            ("failed", "Failed sends"),
            ("unknown", "Unknown outcome"),
            ("pending", "Pending sends"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(status=Message.Status.FAILED)
        if self.value() == "unknown":
            return queryset.filter(
                status=Message.Status.UNKNOWN, direction=Message.Direction.OUTBOUND
            )
        if self.value() == "pending":
            return queryset.filter(
                status__in=[Message.Status.PENDING, Message.Status.SENDING],
                direction=Message.Direction.OUTBOUND,
            )
        return queryset


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "conversation_id",
        "direction",
        "kind",
        "short_content",
        "status",
        "failure_reason",
        "created_at",
    ]
    list_filter = [FailedFilter, "direction", "kind"]
    search_fields = ["=id", "=external_id", "=client_id", "=conversation__id"]
    raw_id_fields = ["conversation", "sender_contact", "sender_user", "reply_to"]
    readonly_fields = [
        "channel",
        "external_id",
        "client_id",
        "dedup_key",
        "send_attempts",
        "send_attempt_id",
        "lease_until",
        "deliver_after",
    ]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [AttachmentInline]
    actions = ["retry_sending"]

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return obj.content[:80]

    @admin.action(description="Retry sending the selected failed or unknown messages")
    def retry_sending(self, request, queryset):
        retried = sum(
            retry_failed_message(message)
            for message in queryset.filter(
                status__in=RETRYABLE_STATUSES, direction=Message.Direction.OUTBOUND
            )
        )
        skipped = queryset.count() - retried
        self.message_user(request, f"{retried} message(s) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected message(s) were not failed or unknown outbound messages; "
                "left as they are.",
                messages.WARNING,
            )


@admin.register(ContactIdentity)
class ContactIdentityAdmin(admin.ModelAdmin):
    list_display = ["external_id", "channel", "contact", "display_name"]
    list_select_related = ["channel", "contact"]
    search_fields = ["=external_id", "display_name", "contact__name"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


@admin.register(RealtimeEvent)
class RealtimeEventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "channel_id", "conversation_id", "created_at"]
    list_filter = ["type"]
    ordering = ["-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EarlyStatus)
class EarlyStatusAdmin(admin.ModelAdmin):
    """Statuses waiting for their provider id (see services.send): a row that stays names a
    send whose answer never stored that id. Read-only; pruned after a day."""

    list_display = ["external_id", "status", "channel", "created_at"]
    list_filter = ["status"]
    list_select_related = ["channel"]
    search_fields = ["=external_id"]
    ordering = ["-id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class WebhookProblemFilter(admin.SimpleListFilter):
    """What the dashboard's webhook tiles count (communications/admin_dashboard.py): deliveries
    refused at the door (bad signature or token, malformed) and deliveries whose processing
    failed, received in the last 24 hours."""

    title = "problems in the last 24 h"
    parameter_name = "problem"

    def lookups(self, request, model_admin):
        return [("rejected", "Rejected (24 h)"), ("failed", "Processing failed (24 h)")]

    def queryset(self, request, queryset):
        from .admin_dashboard import webhook_problems

        problem = webhook_problems().get(self.value())
        return queryset.filter(problem) if problem is not None else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Every platform delivery with its verdict (communications/webhooks.py). Read-only; staff
    replay a delivery after fixing what made it fail — ingest is idempotent, so replaying one
    that was stored already changes nothing."""

    list_display = ["id", "received_at", "channel", "source", "verdict", "outcome", "attempts"]
    list_filter = [WebhookProblemFilter, "verdict", "outcome", "source", "channel"]
    list_select_related = ["channel"]
    search_fields = ["=dedup_key"]
    ordering = ["-id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["replay"]
    fields = [
        "channel",
        "source",
        "received_at",
        "verdict",
        "outcome",
        "reason",
        "attempts",
        "processed_at",
        "dedup_key",
        "headers",
        "body_text",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="body")
    def body_text(self, obj) -> str:
        raw = bytes(obj.body or b"")
        text = raw.decode("utf-8", errors="replace")
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text[:100_000])

    @admin.action(description="Replay selected deliveries (nothing already stored is doubled)")
    def replay(self, request, queryset):
        refused = queryset.exclude(verdict__in=["accepted", "duplicate"]).count()
        count = webhooks.replay(queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} deliveries queued for processing again.")
        if refused:
            self.message_user(
                request,
                f"{refused} rejected deliveries (bad signature or malformed) cannot be replayed: "
                "they were never authentic or never understood.",
                level=messages.WARNING,
            )


class CannedResponseForm(forms.ModelForm):
    class Meta:
        model = CannedResponse
        fields = ["shortcut", "title", "content", "team", "owner"]

    def clean_content(self):
        content = self.cleaned_data["content"]
        problem = placeholder_problem(content)
        if problem:
            raise forms.ValidationError(problem)
        return content

    def clean(self):
        data = super().clean()
        if bool(data.get("team")) == bool(data.get("owner")):
            raise forms.ValidationError(
                "Choose a team (team-wide) or an owner (personal), not both and not neither."
            )
        return data


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    form = CannedResponseForm
    list_display = ["shortcut", "title", "team", "owner", "updated_at"]
    list_filter = ["team"]
    list_select_related = ["team", "owner"]
    search_fields = ["shortcut", "title", "content"]
    raw_id_fields = ["owner"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Mention)
class MentionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "conversation_id", "message_id", "created_at", "read_at"]
    list_select_related = ["user"]
    raw_id_fields = ["message", "conversation", "user"]
    ordering = ["-id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from . import admin_outgoing  # noqa: E402, F401  (outgoing webhooks: subscriptions, delivery log)
