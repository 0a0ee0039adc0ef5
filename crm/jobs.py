"""Long jobs (R14): 202 + job id, progress, one run per resource, heartbeat, stale recovery.

    job = start_job("email_import", lock_key=f"channel:{id}", title=…, params={…}, user=…)
    # → Job (queued; the task runs it); JobBusy(active_job) when one is queued or running

A runner is registered per kind (`register_runner("email_import", run)`) and called as
`run(job, progress)`; it reports with `progress.beat(scanned=…, stored=…)` at least every
STALE_AFTER, which also fences it: a run the recovery re-queued or failed stops there
(`Superseded`). What it returns is stored as the job's `result`.

Recovery (beat, every minute): a running job without a heartbeat for STALE_AFTER is re-queued
(up to MAX_ATTEMPTS runs, then failed); one running longer than MAX_RUNTIME is failed; a queued
job nobody picked up (the broker lost the task) is sent again — only one run can claim it.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Job

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=180)
MAX_RUNTIME = timedelta(minutes=30)
MAX_ATTEMPTS = 3

State = Job.State
_runners: dict[str, Callable] = {}


class JobBusy(Exception):
    def __init__(self, job: Job):
        super().__init__(f"{job} is already {job.state}")
        self.job = job


class Superseded(Exception):
    """This run's job was re-queued or failed by the recovery: stop without writing."""


class RunTooLong(Exception):
    pass


def register_runner(kind: str, runner: Callable) -> None:
    _runners[kind] = runner


def start_job(kind: str, *, lock_key: str, title: str = "", params=None, user=None) -> Job:
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                lock_key=lock_key,
                title=title,
                params=params or {},
                requested_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        active = Job.objects.filter(
            kind=kind, lock_key=lock_key, state__in=Job.ACTIVE_STATES
        ).first()
        if active is None:  # it finished in between: try once more
            return start_job(kind, lock_key=lock_key, title=title, params=params, user=user)
        raise JobBusy(active) from None
    transaction.on_commit(lambda: queue_job(job.pk))
    return job


def queue_job(job_id: int) -> None:
    from .tasks import run_job_task

    try:
        run_job_task.delay(job_id)
    except Exception:  # the broker is down: the recovery sends it again
        logger.warning("job %s could not be queued; the recovery will", job_id, exc_info=True)


class Progress:
    def __init__(self, job: Job, attempt: int):
        self.job = job
        self.attempt = attempt
        self.counters: dict = dict(job.progress)

    def beat(self, **counters) -> None:
        if timezone.now() - self.job.started_at > MAX_RUNTIME:
            raise RunTooLong()
        self.counters.update(counters)
        changed = Job.objects.filter(
            pk=self.job.pk, state=State.RUNNING, attempt=self.attempt
        ).update(progress=self.counters, heartbeat_at=timezone.now())
        if not changed:
            raise Superseded()


def run_job(job_id: int) -> str:
    """Claim a queued job and run it to its end; returns its final state (or "skipped")."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != State.QUEUED:
            return "skipped"
        job.attempt += 1
        job.state = State.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.progress = {}
        job.error = ""
        job.save()
    attempt = job.attempt
    runner = _runners.get(job.kind)
    if runner is None:
        _finish(job, attempt, State.FAILED, error=f"no runner is registered for '{job.kind}'")
        return State.FAILED
    try:
        result = runner(job, Progress(job, attempt))
    except Superseded:
        logger.warning("job %s attempt %s was superseded; stopping", job_id, attempt)
        return "superseded"
    except RunTooLong:
        _finish(job, attempt, State.FAILED, error=f"ran longer than {MAX_RUNTIME}")
        return State.FAILED
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        _finish(job, attempt, State.FAILED, error=f"{exc.__class__.__name__}: {exc}")
        return State.FAILED
    _finish(job, attempt, State.DONE, result=result or {})
    return State.DONE


def _finish(job: Job, attempt: int, state: str, *, error: str = "", result=None) -> None:
    values = {"state": state, "error": error[:2000], "finished_at": timezone.now()}
    if result is not None:
        values["result"] = result
    Job.objects.filter(pk=job.pk, state=State.RUNNING, attempt=attempt).update(**values)


def recover_stale_jobs(now=None) -> dict:
    now = now or timezone.now()
    requeued, failed, resent = [], [], []
    running = Job.objects.filter(state=State.RUNNING)
    for job in running.filter(started_at__lt=now - MAX_RUNTIME):
        if running.filter(pk=job.pk, attempt=job.attempt).update(
            state=State.FAILED,
            finished_at=now,
            error=f"ran longer than {MAX_RUNTIME}; stopped by the stale-run recovery",
        ):
            failed.append(job.pk)
    for job in running.filter(heartbeat_at__lt=now - STALE_AFTER):
        why = f"no heartbeat for {int(STALE_AFTER.total_seconds())} s (attempt {job.attempt})"
        if job.attempt >= MAX_ATTEMPTS:
            if running.filter(pk=job.pk, attempt=job.attempt).update(
                state=State.FAILED, finished_at=now, error=f"{why}; gave up"
            ):
                failed.append(job.pk)
        elif running.filter(pk=job.pk, attempt=job.attempt).update(
            state=State.QUEUED, heartbeat_at=now, error=f"{why}; re-queued"
        ):
            requeued.append(job.pk)
            queue_job(job.pk)
    forgotten = Job.objects.filter(state=State.QUEUED, created_at__lt=now - STALE_AFTER).exclude(
        heartbeat_at__gte=now - STALE_AFTER
    )
    for pk in list(forgotten.values_list("pk", flat=True)):
        Job.objects.filter(pk=pk).update(heartbeat_at=now)
        resent.append(pk)
        queue_job(pk)
    if requeued or failed or resent:
        logger.warning("job recovery: re-queued %s, failed %s, resent %s", requeued, failed, resent)
    return {"requeued": requeued, "failed": failed, "resent": resent}


def job_payload(job: Job) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "title": job.title,
        "state": job.state,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "heartbeat_at": job.heartbeat_at,
        "finished_at": job.finished_at,
        "status_url": f"/api/v1/jobs/{job.pk}/",
    }
