"""Database pieces of search that Django's model layer has no words for.

`DigitsOnly` normalises a phone number to its digits for a generated column ("+1 555-123-4567"
and "15551234567" are the same number). `VendorSQL` is a migration operation that runs only on
one database vendor: PostgreSQL gets tsvector triggers, trigram and GIN indexes built
CONCURRENTLY; the embedded SQLite database gets FTS5 instead. Neither is part of the model
state, so `makemigrations --check` never sees them.
"""

from django.db import migrations
from django.db.models import CharField, Func, Value
from django.db.models.functions import Replace

# What people put between the digits of a phone number. SQLite has no regexp_replace: these
# are removed one by one there; PostgreSQL removes every non-digit.
PHONE_SEPARATORS = (" ", "-", "+", "(", ")", ".", "/", "\u00a0")


class DigitsOnly(Func):
    """The digits of a text column: regexp_replace on PostgreSQL, nested REPLACE on SQLite."""

    output_field = CharField()

    def __init__(self, expression, **extra):
        super().__init__(expression, **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"regexp_replace({sql}, '[^0-9]', '', 'g')", params

    def as_sql(self, compiler, connection, **extra_context):
        expression = self.source_expressions[0]
        for separator in PHONE_SEPARATORS:
            expression = Replace(expression, Value(separator), Value(""))
        return compiler.compile(expression)


class VendorSQL(migrations.RunSQL):
    """RunSQL that runs only on one database vendor ("postgresql", "sqlite")."""

    def __init__(self, vendor: str, sql, reverse_sql=None, **kwargs):
        self.vendor = vendor
        super().__init__(sql, reverse_sql, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, [self.vendor, *args], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)
