"""Fixtures for the harness's own tests (others can import them from .fixtures)."""

from .fixtures import crm_user, matrix_stack  # noqa: F401
