"""An email channel's mailbox settings and how far its folders have been read."""

from django.db import models

from communications.models import Channel
from crm.encryption import EncryptedJSONField


class Security(models.TextChoices):
    TLS = "tls", "TLS from the start (IMAP 993, SMTP 465)"
    STARTTLS = "starttls", "STARTTLS (IMAP 143, SMTP 587)"
    NONE = "none", "None: unencrypted (local test servers only)"


class EmailAccount(models.Model):
    """The IMAP and SMTP settings of one email channel. Passwords live in `secrets`
    (`imap_password`, `smtp_password`), encrypted, write-only in the admin."""

    channel = models.OneToOneField(
        Channel,
        on_delete=models.CASCADE,
        related_name="email_account",
        limit_choices_to={"kind": Channel.Kind.EMAIL},
    )
    imap_host = models.CharField("IMAP host", max_length=255)
    imap_port = models.PositiveIntegerField("IMAP port", default=993)
    imap_security = models.CharField(
        "IMAP security", max_length=10, choices=Security.choices, default=Security.TLS
    )
    imap_user = models.CharField("IMAP user", max_length=255)
    imap_folder = models.CharField("IMAP folder", max_length=255, default="INBOX")
    smtp_host = models.CharField("SMTP host", max_length=255)
    smtp_port = models.PositiveIntegerField("SMTP port", default=587)
    smtp_security = models.CharField(
        "SMTP security", max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_user = models.CharField("SMTP user", max_length=255, blank=True)
    from_address = models.EmailField(help_text="the address customers write to and see")
    from_name = models.CharField(
        max_length=120, blank=True, help_text="shown after the manager's name, e.g. 'Acme Support'"
    )
    polling_enabled = models.BooleanField(default=True)
    poll_interval_seconds = models.PositiveIntegerField(
        default=60, help_text="how often beat polls this mailbox (beat checks every minute)"
    )
    subject_thread_days = models.PositiveSmallIntegerField(
        default=14,
        help_text="a mail without thread headers joins the same sender's conversation with the "
        "same subject if that conversation saw a message within this many days",
    )
    secrets = EncryptedJSONField(default=dict, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_poll_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.from_address} ({self.channel.name})"


class MailboxState(models.Model):
    """Where polling of one folder stands. Mail is fetched by UID: everything above
    `last_uid` is new, as long as the folder's UIDVALIDITY is the one stored."""

    account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="folders")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    messages_imported = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "folder"], name="email_folder_state_once")
        ]

    def __str__(self) -> str:
        return f"{self.folder} of {self.account_id}: uid {self.last_uid}"
