"""Beat's rollup refresh (reports/rollups.py)."""

from celery import shared_task

from .rollups import refresh_recent


@shared_task
def refresh_rollups() -> dict:
    return refresh_recent()
