"""Django's PostgreSQL backend with a faster timestamptz loader (see base.py)."""
