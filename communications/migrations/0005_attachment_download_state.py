# Attachments whose media could not be fetched are kept as placeholders and retried.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('communications', '0004_delivery_claim'),
    ]

    operations = [
        migrations.AddField(
            model_name='attachment',
            name='download_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='attachment',
            name='download_error',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='attachment',
            name='download_state',
            field=models.CharField(choices=[('stored', 'Stored'), ('failed', 'Failed to download')], default='stored', max_length=16),
        ),
    ]
