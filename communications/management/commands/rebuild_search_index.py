"""Recompute the message search index: after changing SEARCH_TEXT_CONFIG, or to repair it.

PostgreSQL: the vector functions are recreated with the configured language and every
message's vector is recomputed in autocommitted batches of ids (the table stays writable; the
trigger keeps new writes right meanwhile). SQLite: the FTS5 table is emptied and refilled.
"""

from django.core.management.base import BaseCommand
from django.db import connection

from communications import search_index


class Command(BaseCommand):
    help = "Recompute the message search index (after changing SEARCH_TEXT_CONFIG)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=20000, help="messages per UPDATE")

    def handle(self, *args, batch: int, **options):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                config = search_index.text_config()
                cursor.execute(search_index.postgresql_function_sql(config))
                done = search_index.refill_postgresql(cursor, batch=batch, only_missing=False)
                self.stdout.write(f"{done} messages re-indexed with text search config {config}")
            elif connection.vendor == "sqlite":
                cursor.execute(f"DELETE FROM {search_index.FTS_TABLE}")
                search_index.install_sqlite(cursor)
                cursor.execute(f"SELECT count(*) FROM {search_index.FTS_TABLE}")
                self.stdout.write(f"{cursor.fetchone()[0]} messages re-indexed (FTS5)")
