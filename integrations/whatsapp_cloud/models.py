"""Message templates synced from the WhatsApp Business Account of a Cloud API channel."""

from django.db import models

from communications.models import Channel


class WhatsAppTemplate(models.Model):
    """One template in one language, as Meta's `GET /<WABA_ID>/message_templates` lists it.

    Synced (`manage.py whatsapp_sync_templates`, daily by beat): a template Meta no longer
    lists is deleted, so the reply box only ever offers what Meta would accept."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="wa_templates")
    template_id = models.CharField(max_length=64, blank=True)  # Meta's id
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=32, blank=True)  # MARKETING, UTILITY, AUTHENTICATION
    status = models.CharField(max_length=32)  # APPROVED, PENDING, REJECTED, PAUSED, DISABLED
    components = models.JSONField(default=list)  # Meta's components, as listed
    # POSITIONAL ({{1}}) or NAMED ({{first_name}}): a send names its parameters when NAMED.
    parameter_format = models.CharField(max_length=16, default="POSITIONAL")
    synced_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "language"], name="wa_template_per_language"
            )
        ]
        ordering = ["name", "language"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language}, {self.status})"
