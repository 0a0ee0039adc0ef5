"""The CRM domain: teams of managers, customers (contacts) and their orders."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from .search_sql import DigitsOnly


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    # Auto-assignment (communications/services/assignment.py): the default cap of open
    # conversations per manager (a manager's own cap overrides it; empty = no cap), and who the
    # round robin gave the last conversation to. The row is locked while assigning.
    max_open_per_manager = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="auto-assignment gives a manager no more open conversations than this "
        "(unless their own cap says otherwise); empty: no cap",
    )
    last_auto_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """A coloured tag managers put on conversations and contacts ("vip", "refund")."""

    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#6b7280", help_text="#RRGGBB")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="label_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class CustomAttributeDefinition(models.Model):
    """A typed field staff add to every contact ("Loyalty tier": a list, "Birthday": a date).
    Values live in `Contact.custom_attributes` under `key`, validated against this row by
    communications/services/contacts.py on every write."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        LIST = "list", "List (one of the options)"

    key = models.SlugField(
        max_length=50,
        unique=True,
        help_text="the name in the API (custom_attributes.<key>): lowercase letters, digits, "
        "_ and -; changing it hides the values stored under the old key",
    )
    name = models.CharField(max_length=80, help_text="what managers see")
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.TEXT)
    options = models.JSONField(
        default=list,
        blank=True,
        help_text='for a list: the allowed values, a JSON list of text (["Bronze", "Gold"])',
    )
    description = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="smaller first")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_type_display()})"

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.type == self.Type.LIST:
            options = self.options
            if (
                not isinstance(options, list)
                or not options
                or not all(isinstance(o, str) and o.strip() for o in options)
            ):
                raise ValidationError(
                    {"options": 'a list attribute needs its options: ["Bronze", "Gold"]'}
                )
            if len({o.strip().casefold() for o in options}) != len(options):
                raise ValidationError({"options": "each option once"})
            self.options = [o.strip() for o in options]
        elif self.options:
            raise ValidationError({"options": "only a list attribute has options"})


class Contact(models.Model):
    name = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=32, blank=True, db_index=True)
    email = models.EmailField(blank=True, db_index=True)
    avatar_url = models.URLField(max_length=1000, blank=True)
    # Our copy of the platform's picture (R12), resized, served to staff with the contact's
    # permission (communications/views.py contact_avatar); written by the profile refresh.
    avatar = models.ImageField(upload_to="avatars/", max_length=255, blank=True)
    username = models.CharField(max_length=255, blank=True)
    # The phone's digits, kept by the database on every write path (bulk ingest included):
    # search matches any formatting and partial numbers against it (trigram index on
    # PostgreSQL, migration crm 0004).
    phone_digits = models.GeneratedField(
        expression=DigitsOnly("phone"),
        output_field=models.CharField(max_length=32),
        db_persist=True,
    )
    notes = models.TextField(blank=True)
    # {key: value} of the CustomAttributeDefinition rows: text and list values as text, numbers
    # as JSON numbers, dates as YYYY-MM-DD. Written only through the contacts service, which
    # validates each value against its definition.
    custom_attributes = models.JSONField(default=dict, blank=True)
    labels = models.ManyToManyField(
        Label, through="ContactLabel", related_name="contacts", blank=True
    )
    # Merged into another contact (communications/services/merge.py): its identities,
    # conversations, orders and labels moved there; reversible for a day.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_contacts",
        editable=False,
    )
    merged_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name or self.phone or self.email or f"Contact #{self.pk}"


class ContactLabel(models.Model):
    # The unique (contact, label) leads with the contact: no index of its own.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="label_links", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "label"], name="contact_label_once")
        ]

    def __str__(self) -> str:
        return f"label {self.label_id} on contact {self.contact_id}"


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="orders")
    number = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    ordered_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["contact", "-ordered_at"], name="order_contact_recent")]
        ordering = ["-ordered_at"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class Job(models.Model):
    """A long job (R14): a mailbox import, an export. queued → running → done | failed.

    One queued-or-running job per (kind, lock_key), guaranteed by a partial unique constraint;
    `attempt` fences a run, so a run the stale-run recovery has given up on stops at its next
    heartbeat (crm/jobs.py)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    kind = models.CharField(max_length=40)
    lock_key = models.CharField(max_length=120, help_text="one active job per kind and key")
    title = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # Counters the runner reports ({"scanned": 1200, "stored": 1187, "total": 10000}).
    progress = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "lock_key"],
                condition=models.Q(state__in=["queued", "running"]),
                name="job_one_active_per_key",
            )
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="job_by_state")]

    def __str__(self) -> str:
        return self.title or f"{self.kind} #{self.pk}"
