"""Channels, conversations, messages and attachments: what the inbox is made of."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from crm.encryption import EncryptedJSONField
from crm.models import Contact, Label, Team


class Channel(models.Model):
    class Kind(models.TextChoices):
        API = "api", "HTTP API"
        WHATSAPP = "whatsapp", "WhatsApp"
        MESSENGER = "messenger", "Messenger"
        INSTAGRAM = "instagram", "Instagram"
        TELEGRAM = "telegram", "Telegram"
        EMAIL = "email", "Email"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=120)
    # The channel's own number or handle as customers see it ("+1 555 765 4321"): the inbox
    # shows "via <address>" where a manager may work several numbers of one kind.
    address = models.CharField(max_length=64, blank=True)
    # Non-secret settings (callback URL, page id…) in clear; tokens and keys encrypted.
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    teams = models.ManyToManyField(Team, related_name="channels", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class AutoAssignment(models.TextChoices):
        OFF = "off", "Off"
        ROUND_ROBIN = "round_robin", "Round robin"
        BALANCED = "balanced", "Balanced (least loaded)"

    # Who gets a new conversation (communications/services/assignment.py): nobody, the team's
    # available managers in turn, or the least loaded of them; always within their caps.
    auto_assignment = models.CharField(
        max_length=16, choices=AutoAssignment.choices, default=AutoAssignment.OFF
    )
    assignment_team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="the team whose managers auto-assignment chooses from; "
        "empty: the channel's first team",
    )
    # Weekly schedule, time zone, holidays and the optional reply outside them
    # (communications/business_hours.py); empty: always open, no automatic reply.
    business_hours = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class ManagerAvailability(models.Model):
    """Whether a manager takes new conversations, and how many open ones at most.

    Set by the manager (the inbox's top bar, the API); set to offline by beat once their last
    inbox socket has been gone for AVAILABILITY_OFFLINE_AFTER_SECONDS (and back to online when
    a socket opens again, unless they chose offline themselves). Auto-assignment locks these
    rows, which is what keeps concurrent assignments within the caps."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        BUSY = "busy", "Busy"
        OFFLINE = "offline", "Offline"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="availability",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OFFLINE)
    # True when beat, not the manager, set "offline": a socket opening again means "online".
    set_automatically = models.BooleanField(default=False)
    max_open_conversations = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="this manager's cap of open conversations; empty: their team's default",
    )
    # Refreshed while an inbox socket of theirs is open (and when the last one closes).
    last_socket_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "manager availability"
        indexes = [
            models.Index(
                fields=["last_socket_at"],
                name="availability_present",
                condition=~Q(status="offline"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"


class ContactIdentity(models.Model):
    """Who a contact is on one channel: a phone JID, a PSID, a Telegram user id, an address."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="identities")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    external_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=255, blank=True)
    avatar_url = models.URLField(max_length=1000, blank=True)
    profile_refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "contact identities"
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="identity_unique_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id} on {self.channel_id}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        SNOOZED = "snoozed", "Snoozed"
        RESOLVED = "resolved", "Resolved"

    # No single-column indexes where a composite one below already leads with the column: every
    # index is rewritten on each new message (last_message_at changes, so no HOT update).
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    # The provider's stable id of the chat (room id, chat JID, PSID, thread root Message-ID…):
    # the same customer on the same channel always lands here, across restarts and re-imports.
    external_id = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        db_index=False,
    )
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    is_archived = models.BooleanField(default=False)
    labels = models.ManyToManyField(
        Label, through="ConversationLabel", related_name="conversations", blank=True
    )
    unread_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveBigIntegerField(
        default=1,
        help_text="+1 with every change to the row's payload, in the same UPDATE: pages drop older copies",
    )
    # Merged into another conversation (services/merge.py): its messages live there now, it
    # is archived, and the customer's next message on this chat goes there too (ingest).
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_conversations",
        editable=False,
    )
    merged_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="conversation_unique_per_channel"
            )
        ]
        indexes = [
            # The inbox list: newest activity first, id as the tie-breaker of the cursor.
            models.Index(
                fields=["-last_message_at", "-id"],
                name="conv_recent",
                condition=Q(is_archived=False),
            ),
            models.Index(
                fields=["channel", "is_archived", "-last_message_at", "-id"],
                name="conv_channel_recent",
            ),
            models.Index(
                fields=["status", "-last_message_at", "-id"],
                name="conv_status_recent",
                condition=Q(is_archived=False),
            ),
            models.Index(fields=["assignee", "-last_message_at"], name="conv_assignee_recent"),
            models.Index(fields=["contact"], name="conv_contact"),
            # Beat's reopen of snoozed conversations: only the snoozed ones, a few at any time.
            models.Index(
                fields=["snoozed_until"],
                name="conv_snoozed_due",
                condition=Q(status="snoozed"),
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation #{self.pk}"


class ConversationLabel(models.Model):
    """A label on a conversation: at most once (50 concurrent adds make one link)."""

    # The unique (conversation, label) leads with the conversation: no index of its own.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="label_links", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "label"], name="conversation_label_once"
            )
        ]

    def __str__(self) -> str:
        return f"label {self.label_id} on #{self.conversation_id}"


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in", "Inbound"
        OUTBOUND = "out", "Outbound"

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"
        FILE = "file", "File"
        STICKER = "sticker", "Sticker"
        LOCATION = "location", "Location"
        NOTE = "note", "Private note"
        SYSTEM = "system", "System"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        # A worker holds the claim (attempt id + lease) and is handing it to the provider.
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        # The provider may or may not have it (a worker died mid-call, an ambiguous timeout);
        # resending blindly could double it, so staff decide (the reason says why).
        UNKNOWN = "unknown", "Unknown"
        RECEIVED = "received", "Received"

    # msg_thread below leads with the conversation: no index of its own.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # Denormalised from the conversation so provider ids can be unique per channel.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TEXT)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    failure_reason = models.TextField(blank=True)
    # The provider's id of the message (wamid, mid, Matrix event id, Message-ID…).
    external_id = models.CharField(max_length=255, null=True, blank=True)
    # Fallback dedup key for sources without ids (sender + timestamp, or sender + text).
    dedup_key = models.CharField(max_length=128, null=True, blank=True)
    # The idempotency key an outbound sender chose; a retried request finds the same message.
    client_id = models.CharField(max_length=64, null=True, blank=True)
    sender_contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Indexed below only where set: most messages have neither, and an index on a NULL
    # column is still written on every insert.
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    metadata = models.JSONField(default=dict, blank=True)
    is_edited = models.BooleanField(default=False)
    is_deleted = models.BooleanField(default=False)
    provider_timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveBigIntegerField(
        default=1,
        help_text="+1 with every change to the row's payload, in the same UPDATE: pages drop older copies",
    )
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # The delivery claim (communications/services/delivery.py): the attempt that moved the
    # message to "sending" and until when it may hold it; null when nobody holds it.
    send_attempt_id = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # A pending message is not due before this (a temporary failure's backoff); the sweeper
    # re-queues pending messages whose time is long past and whose task never ran.
    deliver_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                name="message_external_id_unique_per_channel",
                condition=Q(external_id__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["channel", "dedup_key"],
                name="message_dedup_key_unique_per_channel",
                condition=Q(dedup_key__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["client_id"],
                name="message_client_id_unique",
                condition=Q(client_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "-created_at", "-id"], name="msg_thread"),
            models.Index(
                fields=["conversation", "direction", "status"], name="msg_conv_dir_status"
            ),
            models.Index(
                fields=["-created_at"],
                name="msg_failed_recent",
                condition=Q(status="failed"),
            ),
            # The sweeper's, the health check's and the admin's "unknown" scans: only messages
            # in flight or waiting for staff, a handful at any time.
            models.Index(
                fields=["status", "id"],
                name="msg_outbound_unsettled",
                condition=Q(status__in=["pending", "sending", "unknown"], direction="out"),
            ),
            models.Index(
                fields=["sender_user"],
                name="msg_sender_user",
                condition=Q(sender_user__isnull=False),
            ),
            models.Index(
                fields=["reply_to"], name="msg_reply_to", condition=Q(reply_to__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk}"

    def remember_attachments(self, attachments: list) -> None:
        """Mark the attachments as loaded, so serialising the message costs no query.

        A plain list, not a prefetch cache: Django's prefetch gives every message a queryset
        that points back at it, and a page of 200 such cycles is garbage only the slow full
        collection frees (~100 ms pauses on a busy server)."""
        self._loaded_attachments = list(attachments)

    def loaded_attachments(self) -> list:
        """The message's attachments: remembered ones, else one query."""
        if not hasattr(self, "_loaded_attachments"):
            self._loaded_attachments = list(self.attachments.all())
        return self._loaded_attachments


class EarlyStatus(models.Model):
    """A delivery status that named a provider id before the send had stored it: the
    provider's webhook or receipt overtook its own API answer. The send applies and deletes
    it when it stores the id; the prune task drops ones whose id never came."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Message.Status.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "early statuses"
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id", "status"], name="early_status_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.status} for {self.external_id}"


class Attachment(models.Model):
    class DownloadState(models.TextChoices):
        # The bytes are here, or there were none to fetch (encrypted media, a location).
        STORED = "stored", "Stored"
        # The provider's media could not be fetched: the message is kept with this
        # placeholder and the download is retried (automatically with backoff, and on demand).
        FAILED = "failed", "Failed to download"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/%Y/%m/%d/", max_length=500, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(max_length=127)
    size = models.PositiveBigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Where the provider keeps it (mxc:// URI, Graph media id, Telegram file_id…).
    provider_ref = models.CharField(max_length=500, blank=True)
    download_state = models.CharField(
        max_length=16, choices=DownloadState.choices, default=DownloadState.STORED
    )
    download_error = models.TextField(blank=True)
    download_attempts = models.PositiveSmallIntegerField(default=0)
    # A PNG preview rendered by the worker (a PDF's first page: communications/thumbnails.py).
    thumbnail = models.FileField(upload_to="thumbnails/%Y/%m/%d/", max_length=500, blank=True)

    def __str__(self) -> str:
        return self.filename or self.file.name


class RealtimeEvent(models.Model):
    """Every event the inbox is sent, kept for a while so a reconnecting page can resume.

    The id is the event id clients see; rows are written in the same transaction as the change
    they describe and broadcast after commit.
    """

    type = models.CharField(max_length=40)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", null=True)
    # Set for events meant for one user only (`mention.created`): sent to that user's sockets,
    # never to a channel's; channel is then null.
    user_id = models.BigIntegerField(null=True, blank=True)
    conversation_id = models.BigIntegerField(null=True)
    payload = models.JSONField()
    # How the event moves the inbox's counts (communications/counts.py), for conversation
    # events that move any: sent beside `data` as `counts`, replayed with it.
    counts = models.JSONField(null=True, blank=True)
    # The conversation's state before and after (counts.views_move), for events that may move
    # a saved view's count: sent as `views`, replayed with it.
    views = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class WebhookDelivery(models.Model):
    """One HTTP delivery from a platform, kept before it is processed (communications/webhooks.py).

    The door writes the verdict; a worker on the webhook queue turns accepted deliveries into
    messages and statuses in batches. Staff read and replay them in the admin.
    """

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "accepted"
        DUPLICATE = "duplicate", "duplicate (already received)"
        BAD_SIGNATURE = "bad_signature", "bad signature or token"
        MALFORMED = "malformed", "malformed"

    class Outcome(models.TextChoices):
        PENDING = "pending", "waiting to be processed"
        PROCESSING = "processing", "being processed"
        DONE = "done", "processed"
        FAILED = "failed", "processing failed"
        SKIPPED = "skipped", "not processed"

    # Empty for a delivery that serves no one channel: a Matrix appservice transaction carries
    # the events of every connected number (integrations/matrix/webhook.py).
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    source = models.CharField(max_length=32)
    received_at = models.DateTimeField(default=timezone.now)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    # What makes two deliveries the same one (Telegram's update_id, the API's external_id, a
    # Matrix txn id with its body digest, else the body's SHA-256); unique per channel (per
    # source for deliveries of no channel) among accepted deliveries.
    dedup_key = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["id"],
                name="webhook_delivery_waiting",
                condition=Q(outcome__in=["pending", "processing"]),
            ),
            models.Index(  # the claim's look for an unfinished in-order delivery (Matrix)
                fields=["source", "channel", "id"],
                name="webhook_delivery_in_flight",
                condition=Q(outcome="processing"),
            ),
            models.Index(fields=["channel", "-received_at"], name="webhook_delivery_by_channel"),
            models.Index(fields=["received_at"], name="webhook_delivery_by_age"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "dedup_key"],
                name="webhook_delivery_once",
                condition=Q(verdict="accepted"),
            ),
            models.UniqueConstraint(
                fields=["source", "dedup_key"],
                name="webhook_delivery_once_unbound",
                condition=Q(verdict="accepted", channel__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} delivery #{self.pk} ({self.verdict})"


class Activity(models.Model):
    """The audit log: who changed what, when, with the before/after values. A line about a
    conversation ("Dana assigned this to Sam") is also shown in its thread and listed by the
    API; the others (contact edits, channel settings, users, teams, sign-ins) have no
    conversation and name their subject (type, id, name at the time). Written in the
    transaction of the change by the services and admin saves that make it
    (communications/services/activity.py); read-only in the admin."""

    class Verb(models.TextChoices):
        STATUS = "status", "changed the status"
        SNOOZED = "snoozed", "snoozed"
        ASSIGNED = "assigned", "assigned"
        TEAM = "team", "moved to a team"
        ARCHIVED = "archived", "archived"
        LABELS = "labels", "changed the labels"
        CREATED = "created", "created"
        CHANGED = "changed", "changed"
        LOGIN = "login", "signed in"
        LOGIN_FAILED = "login_failed", "failed to sign in"
        MERGED = "merged", "merged"
        UNMERGED = "unmerged", "undid a merge"
        SPLIT = "split", "split"

    class Subject(models.TextChoices):
        CONVERSATION = "conversation", "conversation"
        CONTACT = "contact", "contact"
        CHANNEL = "channel", "channel"
        USER = "user", "user"
        TEAM = "team", "team"

    # msg-like thread order: (conversation, created_at, id), the index below. Empty for a line
    # that is not about one conversation.
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="activity",
        db_index=False,
        null=True,
        blank=True,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The actor's name when it happened (names in before/after too): a line reads the same
    # after a rename or a deletion, and a page of them needs no join.
    actor_name = models.CharField(max_length=150, blank=True)
    verb = models.CharField(max_length=16, choices=Verb.choices)
    # What the line is about, kept as text: it outlives the object (a deleted user's sign-ins).
    subject_type = models.CharField(
        max_length=16, choices=Subject.choices, default=Subject.CONVERSATION
    )
    subject_id = models.BigIntegerField(null=True, blank=True)
    subject_repr = models.CharField("subject", max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "activity"
        indexes = [
            models.Index(fields=["conversation", "-created_at", "-id"], name="activity_thread"),
            # The admin's audit log: newest first, over every subject.
            models.Index(fields=["-created_at", "-id"], name="activity_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name or 'System'} {self.get_verb_display()} {self.subject_repr}"


class Mention(models.Model):
    """A manager named with `@username` in a private note. Read by them in "Mentions"."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="mention_once_per_note")
        ]
        indexes = [
            # "Mentions": a user's, unread first, newest first; and the unread badge.
            models.Index(fields=["user", "-created_at", "-id"], name="mention_by_user"),
            models.Index(fields=["user"], name="mention_unread", condition=Q(read_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"@{self.user_id} in message #{self.message_id}"


class CannedResponse(models.Model):
    """A saved reply. `/` in the reply box finds it by shortcut or text; placeholders
    (communications/services/canned.py) are filled in for the open conversation."""

    shortcut = models.SlugField(max_length=50, help_text="what `/` searches first, e.g. 'shipping'")
    title = models.CharField(max_length=120, blank=True)
    content = models.TextField(max_length=5000)
    # Team-wide (team set) or personal (owner set): exactly one of the two.
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="canned_responses"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_responses",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=True, owner__isnull=False)
                | Q(team__isnull=False, owner__isnull=True),
                name="canned_team_xor_owner",
            ),
            models.UniqueConstraint(
                fields=["team", "shortcut"],
                name="canned_shortcut_once_per_team",
                condition=Q(team__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                name="canned_shortcut_once_per_owner",
                condition=Q(owner__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class OutgoingWebhookSubscription(models.Model):
    """An integrator's endpoint: the events it wants, signed with its secret
    (communications/services/outgoing_webhooks.py)."""

    EVENT_TYPES = (
        "message.created",
        "message.updated",
        "conversation.created",
        "conversation.updated",
        "contact.updated",
    )

    name = models.CharField(max_length=120, blank=True)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="event types sent to this URL")
    # {"signing_secret": "..."}: Fernet-encrypted at rest like channel secrets.
    secrets = EncryptedJSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The failing streak: attempts that failed since the last success, and when it began.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.url

    @property
    def signing_secret(self) -> str:
        return (self.secrets or {}).get("signing_secret", "")


class OutgoingWebhookDelivery(models.Model):
    """The durable outbox: one event for one subscription, written in the transaction that
    caused the event, sent by a worker after commit, kept as the delivery log."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting"
        SENDING = "sending", "being sent"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "given up"

    subscription = models.ForeignKey(
        OutgoingWebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The RealtimeEvent's id: the event id the receiver deduplicates by (same on every attempt
    # and for every subscription). The body is read from that row when sent.
    event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=40)
    # Deliveries of one conversation to one subscription go out in event order.
    conversation_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Retried until then (OUTGOING_WEBHOOK_RETRY_HOURS after the event, or after a redeliver).
    give_up_after = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "outgoing webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outgoing_delivery_waiting",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(
                fields=["subscription", "conversation_id", "event_id"],
                name="outgoing_delivery_order",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(fields=["subscription", "-id"], name="outgoing_delivery_log"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="outgoing_delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.event_id} → {self.subscription_id} ({self.state})"


class OutgoingWebhookAttempt(models.Model):
    """One HTTP call of a delivery: what the receiver answered and how long it took."""

    delivery = models.ForeignKey(
        OutgoingWebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"attempt of delivery {self.delivery_id}: {self.status_code or self.error[:40]}"


class Merge(models.Model):
    """One merge of two conversations or two contacts, with what moved, so that it can be
    undone exactly for MERGE_UNDO_HOURS (communications/services/merge.py). At most one
    standing (not undone) merge per source: the partial unique constraints back the row locks
    the service takes."""

    class Kind(models.TextChoices):
        CONVERSATIONS = "conversations", "conversations"
        CONTACTS = "contacts", "contacts"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    source_conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    target_conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    source_contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    target_contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The ids of what moved and the values it replaced ({"messages": [...], ...}).
    moved = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    undo_until = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_conversation"],
                name="merge_conversation_once",
                condition=Q(undone_at__isnull=True, source_conversation__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["source_contact"],
                name="merge_contact_once",
                condition=Q(undone_at__isnull=True, source_contact__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.CONTACTS:
            return f"contact #{self.source_contact_id} into #{self.target_contact_id}"
        return f"#{self.source_conversation_id} into #{self.target_conversation_id}"
