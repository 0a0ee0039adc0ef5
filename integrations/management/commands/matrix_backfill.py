"""Backfill a WhatsApp-through-Matrix room's history (see integrations/matrix/backfill.py)."""

from django.core.management.base import BaseCommand, CommandError

from integrations.matrix import backfill
from integrations.matrix.models import BackfillJob, MatrixRoom


class Command(BaseCommand):
    help = (
        "Import a portal room's history into the inbox. TARGET is a Matrix room id (!…) or a "
        "conversation id. Runs here and prints progress, or with --queue hands it to Celery."
    )

    def add_arguments(self, parser):
        parser.add_argument("target", help="Matrix room id (!abc…) or conversation id")
        parser.add_argument("--queue", action="store_true", help="run in a Celery worker")

    def handle(self, *args, target, queue, **options):
        try:
            room = backfill.room_for_target(target)
        except (MatrixRoom.DoesNotExist, ValueError) as exc:
            raise CommandError(f"no Matrix portal room for {target!r}") from exc
        except Exception as exc:  # Conversation.DoesNotExist
            raise CommandError(f"{target!r}: {exc}") from exc
        if room.kind != MatrixRoom.Kind.PORTAL:
            raise CommandError(f"{room.room_id} is a {room.kind} room, not a WhatsApp chat")
        try:
            job = backfill.request_backfill(room, None, queue=queue)
        except backfill.BackfillBusy as busy:
            raise CommandError(
                f"backfill #{busy.job.pk} of {room.room_id} is already {busy.job.state}"
            ) from None
        if queue:
            self.stdout.write(f"backfill #{job.pk} of {room.room_id} queued")
            return

        def progress(job_id, phase):
            j = BackfillJob.objects.get(pk=job_id)
            self.stdout.write(
                f"  {phase}: pages {j.pages}, events {j.events_processed}/"
                f"{j.events_total if j.events_total is not None else j.events_seen}, "
                f"messages stored {j.messages_stored}"
            )

        state = backfill.run_job(job.pk, on_page=progress)
        job.refresh_from_db()
        self.stdout.write(
            f"backfill #{job.pk} of {room.room_id}: {state}; {job.events_processed} events, "
            f"{job.messages_stored} new messages" + (f"; {job.error}" if job.error else "")
        )
        if state != BackfillJob.State.DONE:
            raise CommandError(job.error or state)
