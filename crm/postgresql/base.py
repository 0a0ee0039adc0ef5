"""Django's PostgreSQL backend, reading timestamptz values with the C `fromisoformat`.

Django registers a loader that subclasses psycopg's pure-Python one (a regex and a dozen
Python calls per value, ~6 µs; a page of 200 messages holds 400 datetimes). PostgreSQL
prints a timestamptz in ISO form in the session's time zone, which `datetime.fromisoformat`
parses (Python >= 3.11) in under 1 µs; anything it does not take (BC dates, infinity, years
past 9999, a non-ISO DateStyle) goes to Django's loader as before. The result is the same
value: the wall time in the session's zone with Django's tzinfo, as Django's loader gives.
"""

from datetime import datetime
from functools import lru_cache

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.adapt import AdaptersMap

_fromisoformat = datetime.fromisoformat


class IsoTzLoader(BaseTzLoader):
    """Keeps BaseTzLoader's `timezone` attribute: Django's create_cursor compares it with
    the connection's time zone and registers its own loader on the cursor when they differ."""

    def load(self, data):
        try:
            value = _fromisoformat(bytes(data).decode())
        except ValueError:
            return super().load(data)
        return value.replace(tzinfo=self.timezone)


@lru_cache
def _adapters(template: AdaptersMap, timezone) -> AdaptersMap:
    """Django's adapters template (itself cached per time zone) with our loader on top."""
    adapters = AdaptersMap(template)
    loader = type("IsoTzLoaderForZone", (IsoTzLoader,), {"timezone": timezone})
    adapters.register_loader("timestamptz", loader)
    return adapters


class DatabaseWrapper(PostgresDatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params["context"] = _adapters(params["context"], self.timezone)
        return params
