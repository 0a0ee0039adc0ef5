"""Appservice transactions are kept in the webhook log (communications.WebhookDelivery, source
"matrix", no channel), whose dedup key is the same `transaction_key`: ProcessedTransaction goes.

Its rows keep their meaning: each becomes a processed ("done") delivery with that key, so a
re-send of a transaction processed before the upgrade is a duplicate, as it was. Only rows
within the log's retention are copied (older ones would be pruned at once; Synapse re-sends a
transaction within minutes, never days later). The body was never kept: it stays empty.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

REASON = "processed before appservice transactions went through the webhook log"


def copy_to_webhook_log(apps, schema_editor):
    ProcessedTransaction = apps.get_model("integrations", "ProcessedTransaction")
    WebhookDelivery = apps.get_model("communications", "WebhookDelivery")
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    rows = ProcessedTransaction.objects.filter(processed_at__gte=cutoff).order_by("pk")
    batch = []
    for txn_id, processed_at in rows.values_list("txn_id", "processed_at").iterator(2000):
        batch.append(
            WebhookDelivery(
                channel=None,
                source="matrix",
                received_at=processed_at,
                headers={},
                body=b"",
                verdict="accepted",
                reason=REASON,
                dedup_key=txn_id[:128],
                outcome="done",
                attempts=1,
                processed_at=processed_at,
            )
        )
        if len(batch) >= 2000:
            WebhookDelivery.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        WebhookDelivery.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0020_webhook_delivery_without_channel"),
        ("integrations", "0006_whatsapp_templates"),
    ]

    operations = [
        migrations.RunPython(copy_to_webhook_log, migrations.RunPython.noop, elidable=True),
        migrations.DeleteModel(name="ProcessedTransaction"),
    ]
