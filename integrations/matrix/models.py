"""Matrix settings (one row), each manager's Matrix connection, and the rooms we know.

Conversation key (documented in docs/MATRIX_SETUP.md): a WhatsApp chat is the portal room the
bridge made for it, so `Conversation.external_id` is the Matrix room id. The room outlives
restarts, re-imports and the LID change (a chat whose JID moves from phone to LID keeps its
room). The contact of a direct chat is keyed by the same room id, so a contact first seen as a
LID ghost and later as a phone ghost stays one contact, with the phone added when learnt.
"""

from django.conf import settings
from django.db import models

from communications.models import Channel
from crm.encryption import EncryptedJSONField


class MatrixSettings(models.Model):
    """The homeserver Switchboard talks to. One row (pk=1); read through settings_cache."""

    class AuthMode(models.TextChoices):
        ADMIN_LOGIN = "admin_login", "Admin registration + password login"
        APPSERVICE = "appservice", "Appservice registration (as_token)"

    class WhatsAppMode(models.TextChoices):
        CLASSICAL = "classical", "Classical (WhatsApp Cloud API)"
        MATRIX = "matrix", "Matrix (Synapse + mautrix-whatsapp)"

    whatsapp_mode = models.CharField(max_length=16, choices=WhatsAppMode.choices, blank=True)
    homeserver_url = models.URLField(blank=True, help_text="e.g. http://synapse:8008")
    server_name = models.CharField(max_length=255, blank=True, help_text="e.g. example.com")
    auth_mode = models.CharField(
        max_length=16, choices=AuthMode.choices, default=AuthMode.ADMIN_LOGIN
    )
    bridge_bot_user_id = models.CharField(
        max_length=255, blank=True, help_text="default @whatsappbot:<server name>"
    )
    appservice_id = models.CharField(max_length=64, default="switchboard")
    # registration_shared_secret, as_token, hs_token, provisioning_secret
    secrets = EncryptedJSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Matrix settings"
        verbose_name_plural = "Matrix settings"

    def __str__(self) -> str:
        return f"Matrix: {self.homeserver_url or 'not configured'}"

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)
        from .settings_cache import invalidate

        invalidate()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        from .settings_cache import invalidate

        invalidate()
        return result


class MatrixConnection(models.Model):
    """A manager's Matrix account and the WhatsApp login behind it."""

    class State(models.TextChoices):
        DISCONNECTED = "disconnected", "Disconnected"
        WAITING_FOR_SCAN = "waiting_for_scan", "Waiting for the QR scan"
        CONNECTED = "connected", "Connected"
        ERROR = "error", "Error"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="matrix_connection"
    )
    matrix_user_id = models.CharField(max_length=255, unique=True)
    # access_token, password (admin_login mode)
    secrets = EncryptedJSONField(default=dict, blank=True)
    device_id = models.CharField(max_length=255, blank=True)
    management_room_id = models.CharField(max_length=255, blank=True, db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DISCONNECTED)
    phone = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(blank=True)
    qr_event_id = models.CharField(max_length=255, blank=True)
    qr_mxc = models.CharField(max_length=500, blank=True)
    qr_data = models.TextField(blank=True, help_text="data: URL of the latest QR image")
    qr_updated_at = models.DateTimeField(null=True, blank=True)
    qr_refreshes = models.PositiveSmallIntegerField(default=0)
    # Bridge notices older than the current login attempt are history, not news.
    login_started_at = models.DateTimeField(null=True, blank=True)
    sync_next_batch = models.CharField(max_length=255, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.matrix_user_id} ({self.get_state_display()})"

    @property
    def access_token(self) -> str:
        return self.secrets.get("access_token", "")


class MatrixRoom(models.Model):
    """A room one of our managers is in: a portal (a WhatsApp chat) or a management room."""

    class Kind(models.TextChoices):
        PORTAL = "portal", "Portal (WhatsApp chat)"
        MANAGEMENT = "management", "Management room"
        OTHER = "other", "Other"

    room_id = models.CharField(max_length=255, unique=True)
    connection = models.ForeignKey(MatrixConnection, on_delete=models.CASCADE, related_name="rooms")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    chat_jid = models.CharField(max_length=255, blank=True)
    receiver = models.CharField(max_length=32, blank=True, help_text="fi.mau.receiver")
    is_group = models.BooleanField(default=False)
    name = models.CharField(max_length=255, blank=True)
    # The channel of the number this portal belongs to (numbers.py); set on first use.
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.room_id} ({self.kind})"


class WhatsAppNumber(models.Model):
    """One WhatsApp number a manager connected: its own channel (one connection per CRM user,
    as the original documents have it). The channel outlives a logout, so its history stays
    readable; replies need the number connected again (see provider.py)."""

    connection = models.ForeignKey(
        MatrixConnection, on_delete=models.CASCADE, related_name="numbers"
    )
    phone = models.CharField(max_length=32, help_text="digits, as the bridge reports them")
    channel = models.OneToOneField(Channel, on_delete=models.PROTECT, related_name="matrix_number")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "phone"], name="matrix_number_once")
        ]

    def __str__(self) -> str:
        return f"+{self.phone} of {self.connection.user}"

    @property
    def is_connected(self) -> bool:
        connection = self.connection
        return (
            connection.state == MatrixConnection.State.CONNECTED
            and connection.phone == self.phone
            and bool(connection.access_token)
        )


class BackfillJob(models.Model):
    """One history import of a portal room (R14): queued → running → done | failed.

    At most one queued or running job per room, guaranteed by a partial unique constraint;
    `attempt` fences a run: a run whose job was re-queued by the stale-run recovery finds its
    heartbeat refused and stops (see backfill.py).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    room = models.ForeignKey(MatrixRoom, on_delete=models.CASCADE, related_name="backfill_jobs")
    conversation = models.ForeignKey(
        "communications.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=12, blank=True, help_text="scanning | ingesting")
    pages = models.PositiveIntegerField(default=0)
    events_seen = models.PositiveIntegerField(default=0)
    events_total = models.PositiveIntegerField(null=True, blank=True)
    events_processed = models.PositiveIntegerField(default=0)
    messages_stored = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["room"],
                condition=models.Q(state__in=["queued", "running"]),
                name="matrix_one_active_backfill_per_room",
            )
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="matrix_backfill_state")]

    def __str__(self) -> str:
        return f"backfill #{self.pk} of {self.room.room_id} ({self.state})"
