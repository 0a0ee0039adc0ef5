"""Admin registrations of the integrations, one module per provider."""

from .matrix import admin as matrix_admin  # noqa: F401
