"""Celery tasks of the Matrix integration: thin wrappers around backfill.py."""

from celery import shared_task

from . import backfill


@shared_task(acks_late=True)
def run_backfill(job_id: int) -> str:
    """Run one history backfill job; a duplicate delivery finds the job claimed and skips."""
    return backfill.run_job(job_id)


@shared_task
def recover_stale_backfills() -> dict:
    """Beat, every minute: re-queue quiet running jobs, fail those running over 30 minutes."""
    return backfill.recover_stale_jobs()
