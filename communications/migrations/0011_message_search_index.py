"""Full-text search over every message: a tsvector kept by a trigger and a GIN index built
CONCURRENTLY on PostgreSQL; an FTS5 table kept by triggers on SQLite. See
communications/search_index.py."""

from django.db import migrations

from communications import search_index


def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            search_index.install_postgresql(cursor)
            cursor.execute(search_index.POSTGRESQL_INDEX)
        elif schema_editor.connection.vendor == "sqlite":
            search_index.install_sqlite(cursor)


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            statements = search_index.POSTGRESQL_UNINSTALL
        elif schema_editor.connection.vendor == "sqlite":
            statements = search_index.SQLITE_UNINSTALL
        else:
            statements = []
        for statement in statements:
            cursor.execute(statement)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction, and the existing rows'
    # vectors are filled in autocommitted batches.
    atomic = False

    dependencies = [
        ("communications", "0010_labels_activity_mentions_canned"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
