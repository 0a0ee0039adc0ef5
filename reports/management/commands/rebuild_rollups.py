from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date

from communications.models import Conversation
from reports.rollups import local_today, local_zone, rebuild_rollups


class Command(BaseCommand):
    help = (
        "Rebuild the reports' daily rollups for a range of days (TIME_ZONE), replacing what is "
        "there. Default: from the first conversation's day to today."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="last", help="last day, YYYY-MM-DD (default today)")

    def handle(self, *args, first=None, last=None, **options):
        last_day = self._day("--to", last) if last else local_today()
        if first:
            first_day = self._day("--from", first)
        else:
            oldest = (
                Conversation.objects.order_by("created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            first_day = (
                min(oldest.astimezone(local_zone()).date(), last_day) if oldest else last_day
            )
        if first_day > last_day:
            raise CommandError(f"--from {first_day} is after --to {last_day}")
        totals = rebuild_rollups(first_day, last_day, log=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt {totals['days']} days ({first_day}..{last_day}): {totals['rows']} rows, "
                f"{totals['manager_rows']} manager rows."
            )
        )

    def _day(self, option: str, value: str):
        day = None
        try:
            day = parse_date(value)
        except ValueError:
            pass
        if day is None:
            raise CommandError(f"{option} '{value}' is not a date: use YYYY-MM-DD")
        return day
