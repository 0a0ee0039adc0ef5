"""Celery tasks of the project: the long-job runner and its recovery (crm/jobs.py)."""

from celery import shared_task

from . import jobs


@shared_task(acks_late=True)
def run_job_task(job_id: int) -> str:
    return jobs.run_job(job_id)


@shared_task
def recover_stale_jobs() -> dict:
    return jobs.recover_stale_jobs()
