"""Sync WhatsApp message templates from each Cloud API channel's WhatsApp Business Account."""

from django.core.management.base import BaseCommand, CommandError

from communications.models import Channel
from integrations.whatsapp_cloud.templates import (
    TemplateSyncError,
    channels_to_sync,
    sync_templates,
)


class Command(BaseCommand):
    help = (
        "Fetch the message templates of every WhatsApp Cloud API channel (or one) from Meta "
        "(GET /<WABA_ID>/message_templates) and store them for the inbox's template picker. "
        "Beat runs this daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, help="only this channel id")

    def handle(self, *args, **options):
        channels = channels_to_sync()
        if options["channel"]:
            channel = Channel.objects.filter(
                pk=options["channel"], kind=Channel.Kind.WHATSAPP
            ).first()
            if channel is None:
                raise CommandError(f"channel {options['channel']} is not a WhatsApp channel")
            channels = [channel]
        failed = 0
        for channel in channels:
            try:
                count = sync_templates(channel)
            except TemplateSyncError as exc:
                failed += 1
                self.stderr.write(f"{channel.name} (#{channel.pk}): {exc.reason}")
                continue
            self.stdout.write(f"{channel.name} (#{channel.pk}): {count} templates")
        if failed:
            raise CommandError(f"{failed} channel(s) could not be synced")
