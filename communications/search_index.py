"""The message search index, kept by the database itself so every write path keeps it right:
the ORM, `crm/bulk_sql.py`'s batch INSERTs and UPDATEs, edits, deletions, raw SQL.

PostgreSQL: a `search_vector tsvector` column on communications_message, filled by a BEFORE
INSERT / UPDATE OF content, metadata trigger from the message text and the email subject
(`metadata.email.subject`): the configured language's stems (SEARCH_TEXT_CONFIG, default
english: "orders" finds "ordered") plus the `simple` words (names and numbers as written).
A GIN index serves `@@`. Status updates (the hot UPDATE) do not fire the trigger.

SQLite (embedded): an FTS5 table with the porter stemmer, kept by AFTER triggers; rowid is the
message id. Django's SQLite ALTER TABLE copies the table and drops the old one (and its
triggers), so `install_sqlite` runs after every migrate (post_migrate, idempotent).

The column, the table and the triggers are not model fields: nothing in Python writes them.
"""

import re

from django.conf import settings

MESSAGE_TABLE = "communications_message"
FTS_TABLE = "communications_message_fts"


def text_config() -> str:
    """The configured text search configuration's name, checked to be a plain identifier (it
    is written into SQL as a regconfig literal)."""
    name = getattr(settings, "SEARCH_TEXT_CONFIG", "english") or "english"
    if not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?", name):
        raise ValueError(f"SEARCH_TEXT_CONFIG {name!r} is not a text search configuration name")
    return name


def postgresql_function_sql(config: str) -> str:
    """The vector of a message, and the trigger function that stores it."""
    return f"""
CREATE OR REPLACE FUNCTION sb_message_search_vector(content text, metadata jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_tsvector('{config}'::regconfig, doc) || to_tsvector('simple'::regconfig, doc)
  FROM (SELECT coalesce(content, '') || ' ' || coalesce(metadata #>> '{{email,subject}}', '')
        AS doc) AS d
$$;
CREATE OR REPLACE FUNCTION sb_message_search_vector_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector := sb_message_search_vector(NEW.content, NEW.metadata);
  RETURN NEW;
END
$$;
"""


POSTGRESQL_INSTALL = [
    f"ALTER TABLE {MESSAGE_TABLE} ADD COLUMN IF NOT EXISTS search_vector tsvector",
    # the functions come from postgresql_function_sql (the configured language)
    f"""DROP TRIGGER IF EXISTS message_search_vector ON {MESSAGE_TABLE};
CREATE TRIGGER message_search_vector BEFORE INSERT OR UPDATE OF content, metadata
ON {MESSAGE_TABLE} FOR EACH ROW EXECUTE FUNCTION sb_message_search_vector_trigger()""",
]

POSTGRESQL_INDEX = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS msg_search_vector ON {MESSAGE_TABLE} "
    "USING gin (search_vector)"
)

POSTGRESQL_UNINSTALL = [
    "DROP INDEX CONCURRENTLY IF EXISTS msg_search_vector",
    f"DROP TRIGGER IF EXISTS message_search_vector ON {MESSAGE_TABLE}",
    "DROP FUNCTION IF EXISTS sb_message_search_vector_trigger()",
    "DROP FUNCTION IF EXISTS sb_message_search_vector(text, jsonb)",
    f"ALTER TABLE {MESSAGE_TABLE} DROP COLUMN IF EXISTS search_vector",
]

_SQLITE_DOC = (
    "coalesce({row}.content, '') || ' ' || "
    "coalesce(json_extract({row}.metadata, '$.email.subject'), '')"
)
SQLITE_INSTALL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "body, tokenize = 'porter unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON {MESSAGE_TABLE} BEGIN
  INSERT INTO {FTS_TABLE}(rowid, body) VALUES (new.id, {_SQLITE_DOC.format(row="new")});
END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF content, metadata
ON {MESSAGE_TABLE} BEGIN
  DELETE FROM {FTS_TABLE} WHERE rowid = old.id;
  INSERT INTO {FTS_TABLE}(rowid, body) VALUES (new.id, {_SQLITE_DOC.format(row="new")});
END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON {MESSAGE_TABLE} BEGIN
  DELETE FROM {FTS_TABLE} WHERE rowid = old.id;
END""",
]

SQLITE_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_insert",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_update",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_delete",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]


def install_postgresql(cursor, *, batch: int = 20000) -> None:
    """Column, functions, trigger; then the vectors of existing rows, one autocommitted batch
    of ids at a time (outside a transaction: a long table is never locked as a whole)."""
    cursor.execute(POSTGRESQL_INSTALL[0])
    cursor.execute(postgresql_function_sql(text_config()))
    cursor.execute(POSTGRESQL_INSTALL[1])
    refill_postgresql(cursor, batch=batch)


def refill_postgresql(cursor, *, batch: int = 20000, only_missing: bool = True) -> int:
    cursor.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {MESSAGE_TABLE}")
    low, high = cursor.fetchone()
    done = 0
    missing = " AND search_vector IS NULL" if only_missing else ""
    for start in range(low, high + 1, batch):
        cursor.execute(
            f"UPDATE {MESSAGE_TABLE} SET search_vector = "
            "sb_message_search_vector(content, metadata) "
            f"WHERE id >= %s AND id < %s{missing}",
            [start, start + batch],
        )
        done += cursor.rowcount
    return done


def install_sqlite(cursor) -> None:
    """FTS5 table and triggers (idempotent); rows missing from the index are added."""
    for statement in SQLITE_INSTALL:
        cursor.execute(statement)
    cursor.execute(
        f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT m.id, {_SQLITE_DOC.format(row='m')} "
        f"FROM {MESSAGE_TABLE} AS m WHERE m.id NOT IN (SELECT rowid FROM {FTS_TABLE})"
    )


def reinstall_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate: on SQLite, put back triggers a table rebuild dropped."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return
    applied = recorder.applied_migrations()
    if not any(app == "communications" and "message_search" in name for app, name in applied):
        return
    with connection.cursor() as cursor:
        install_sqlite(cursor)
