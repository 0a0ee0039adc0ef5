"""History backfill of a portal room as a long job with progress (R14).

Requesting: `request_backfill(room, user)` creates a queued `BackfillJob`; a partial unique
constraint allows one queued-or-running job per room, so a second request (even a concurrent
one) gets the active job back instead (`BackfillBusy`, the API answers 409 naming it).

Running (`run_job`, from the Celery task or `manage.py matrix_backfill`), in two passes over
`GET /rooms/{room}/messages?dir=b` with the connection's token:

1. scan: page backwards from the newest event to the room's creation, remembering each page's
   `start` token and counting events (`events_seen`, then `events_total`);
2. ingest: the pages again, oldest first, each page's events oldest first, through the SAME
   mapper as sync and the appservice (`mapper.handle_event`, source "backfill"), so an event
   they already stored is not stored twice, and an edit, reaction or redaction always meets the
   message it changes. Backfilled messages are `historical`: no unread count, no reopening.

Every page updates the progress counters and `heartbeat_at`, fenced by `attempt`: when the
stale-run recovery has re-queued or failed the job, the old run's heartbeat changes no row and
the run stops. `recover_stale_jobs` (beat, every minute) re-queues a running job without a
heartbeat for STALE_AFTER (up to MAX_ATTEMPTS runs, then failed) and fails one that has run
longer than MAX_RUNTIME.
"""

import logging
import time
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from communications.models import Conversation

from . import mapper
from .client import MatrixClient, MatrixError, MatrixUnavailable
from .models import BackfillJob, MatrixRoom
from .numbers import room_channel
from .settings_cache import get_config

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
STALE_AFTER = timedelta(seconds=180)
MAX_RUNTIME = timedelta(minutes=30)
MAX_ATTEMPTS = 3
# What the backfill feeds the mapper; state, membership and statuses are not history to import.
HISTORY_TYPES = ("m.room.message", "m.sticker", "m.reaction", "m.room.redaction")
REQUEST_RETRIES = (1.0, 2.0, 4.0)


class BackfillBusy(Exception):
    def __init__(self, job: BackfillJob):
        super().__init__(f"backfill #{job.pk} of this room is already {job.state}")
        self.job = job


class Superseded(Exception):
    """The job is no longer this run's: recovered as stale, or finished elsewhere."""


class RunTooLong(Exception):
    pass


# -- requesting ----------------------------------------------------------------------------
def request_backfill(room: MatrixRoom, user=None, *, queue: bool = True) -> BackfillJob:
    """A new queued job, or BackfillBusy naming the active one. Queued after commit."""
    conversation = Conversation.objects.filter(
        channel=room_channel(room), external_id=room.room_id
    ).first()
    try:
        with transaction.atomic():
            job = BackfillJob.objects.create(
                room=room, conversation=conversation, requested_by=user
            )
    except IntegrityError:
        active = active_job(room)
        if active is None:  # finished between our insert and our look: try once more
            return request_backfill(room, user, queue=queue)
        raise BackfillBusy(active) from None
    if queue:
        queue_job(job.pk)
    return job


def active_job(room: MatrixRoom) -> BackfillJob | None:
    return (
        BackfillJob.objects.filter(room=room, state__in=BackfillJob.ACTIVE_STATES)
        .order_by("pk")
        .first()
    )


def queue_job(job_id: int) -> None:
    from .tasks import run_backfill

    transaction.on_commit(lambda: run_backfill.delay(job_id))


def status_url(job: BackfillJob) -> str:
    return reverse("whatsapp-backfill-status", args=[job.pk])


def job_payload(job: BackfillJob) -> dict:
    total = job.events_total
    percent = None
    if job.state == BackfillJob.State.DONE:
        percent = 100
    elif total:
        percent = min(99, round(100 * job.events_processed / total))
    return {
        "job_id": job.pk,
        "status_url": status_url(job),
        "room_id": job.room.room_id,
        "conversation_id": job.conversation_id,
        "status": job.state,
        "phase": job.phase,
        "attempt": job.attempt,
        "progress": {
            "pages": job.pages,
            "events_seen": job.events_seen,
            "events_total": total,
            "events_processed": job.events_processed,
            "messages_stored": job.messages_stored,
            "percent": percent,
        },
        "requested_by": job.requested_by.get_username() if job.requested_by_id else None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error,
    }


# -- running -------------------------------------------------------------------------------
def run_job(job_id: int, *, on_page=None) -> str:
    """Run a queued job to its end; returns its final state (or "skipped")."""
    run = _claim(job_id)
    if run is None:
        return "skipped"
    job, attempt = run
    try:
        _run(job, attempt, on_page)
    except Superseded:
        logger.warning("backfill #%s attempt %s was superseded; stopping", job_id, attempt)
        return "superseded"
    except RunTooLong:
        _finish(job_id, attempt, BackfillJob.State.FAILED, f"ran longer than {MAX_RUNTIME}")
        return BackfillJob.State.FAILED
    except (MatrixError, MatrixUnavailable) as exc:
        logger.warning("backfill #%s failed: %s", job_id, exc)
        _finish(job_id, attempt, BackfillJob.State.FAILED, f"homeserver: {exc}")
        return BackfillJob.State.FAILED
    except Exception as exc:
        logger.exception("backfill #%s crashed", job_id)
        _finish(job_id, attempt, BackfillJob.State.FAILED, f"{exc.__class__.__name__}: {exc}")
        raise
    _finish(job_id, attempt, BackfillJob.State.DONE)
    return BackfillJob.State.DONE


def _claim(job_id: int) -> tuple[BackfillJob, int] | None:
    """queued → running, once: a duplicate task delivery finds nothing to claim."""
    now = timezone.now()
    with transaction.atomic():
        job = (
            BackfillJob.objects.select_for_update()
            .select_related("room", "room__connection")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.state != BackfillJob.State.QUEUED:
            return None
        job.attempt += 1
        job.state = BackfillJob.State.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.phase = "scanning"
        job.pages = job.events_seen = job.events_processed = job.messages_stored = 0
        job.events_total = None
        job.error = ""
        job.save()
    return job, job.attempt


def _heartbeat(job: BackfillJob, attempt: int, **values) -> None:
    if timezone.now() - job.started_at > MAX_RUNTIME:
        raise RunTooLong()
    values["heartbeat_at"] = timezone.now()
    changed = BackfillJob.objects.filter(
        pk=job.pk, state=BackfillJob.State.RUNNING, attempt=attempt
    ).update(**values)
    if not changed:
        raise Superseded()


def _finish(job_id: int, attempt: int, state: str, error: str = "") -> None:
    BackfillJob.objects.filter(pk=job_id, state=BackfillJob.State.RUNNING, attempt=attempt).update(
        state=state, error=error[:2000], finished_at=timezone.now(), phase=""
    )


def _page(client: MatrixClient, room_id: str, token: str) -> dict:
    for delay in (*REQUEST_RETRIES, None):
        try:
            return client.messages(room_id, start=token, direction="b", limit=PAGE_SIZE)
        except MatrixUnavailable:
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _run(job: BackfillJob, attempt: int, on_page) -> None:
    room = job.room
    config = get_config()
    client = MatrixClient.for_connection(room.connection, config)

    # 1. scan backwards, newest first, keeping the start token of every page
    tokens: list[str] = []
    token, seen = "", 0
    while True:
        response = _page(client, room.room_id, token)
        chunk = response.get("chunk") or []
        if chunk:
            tokens.append(response.get("start") or token)
            seen += len(chunk)
        _heartbeat(job, attempt, pages=len(tokens), events_seen=seen)
        if on_page:
            on_page(job.pk, "scanning")
        end = response.get("end")
        if not chunk or not end or end == token:
            break
        token = end
    _heartbeat(job, attempt, events_total=seen, phase="ingesting")

    # 2. the same pages oldest first, through the one mapper
    processed = stored = 0
    for token in reversed(tokens):
        response = _page(client, room.room_id, token)
        chunk = list(reversed(response.get("chunk") or []))
        for event in chunk:
            if event.get("type") not in HISTORY_TYPES:
                continue
            event.setdefault("room_id", room.room_id)
            try:
                used = mapper.handle_event(event, config=config, source="backfill")
            except MatrixError:
                logger.exception("backfill: event %s skipped", event.get("event_id"))
                continue
            if used and event.get("type") in ("m.room.message", "m.sticker"):
                relates = (event.get("content") or {}).get("m.relates_to") or {}
                stored += relates.get("rel_type") != "m.replace"
        processed += len(chunk)
        _heartbeat(
            job,
            attempt,
            events_processed=min(processed, seen),
            messages_stored=stored,
            events_seen=max(seen, processed),
        )
        if on_page:
            on_page(job.pk, "ingesting")
    conversation = Conversation.objects.filter(
        channel=room_channel(room), external_id=room.room_id
    ).first()
    values = {"events_total": max(seen, processed), "events_processed": max(seen, processed)}
    if conversation is not None:
        values["conversation"] = conversation
    _heartbeat(job, attempt, **values)


# -- stale-run recovery --------------------------------------------------------------------
def recover_stale_jobs(now=None) -> dict:
    """Re-queue running jobs whose worker went quiet; fail those past MAX_RUNTIME."""
    now = now or timezone.now()
    requeued, failed = [], []
    running = BackfillJob.objects.filter(state=BackfillJob.State.RUNNING)
    too_long = list(running.filter(started_at__lt=now - MAX_RUNTIME).values_list("pk", flat=True))
    for pk in too_long:
        if running.filter(pk=pk).update(
            state=BackfillJob.State.FAILED,
            finished_at=now,
            phase="",
            error=f"ran longer than {MAX_RUNTIME}; stopped by the stale-run recovery",
        ):
            failed.append(pk)
    quiet = running.filter(heartbeat_at__lt=now - STALE_AFTER)
    for job in list(quiet.exclude(pk__in=too_long)):
        message = f"no heartbeat for {STALE_AFTER.seconds} s (attempt {job.attempt})"
        if job.attempt >= MAX_ATTEMPTS:
            if quiet.filter(pk=job.pk, attempt=job.attempt).update(
                state=BackfillJob.State.FAILED,
                finished_at=now,
                phase="",
                error=f"{message}; gave up after {job.attempt} attempts",
            ):
                failed.append(job.pk)
            continue
        if quiet.filter(pk=job.pk, attempt=job.attempt).update(
            state=BackfillJob.State.QUEUED, phase="", error=f"{message}; re-queued"
        ):
            requeued.append(job.pk)
            queue_job(job.pk)
    # A queued job nobody picked up (the broker lost the task): send the task again; a
    # duplicate delivery is harmless, only one run can claim the job.
    forgotten = BackfillJob.objects.filter(
        state=BackfillJob.State.QUEUED, created_at__lt=now - STALE_AFTER
    ).filter(models.Q(heartbeat_at=None) | models.Q(heartbeat_at__lt=now - STALE_AFTER))
    resent = []
    for pk in forgotten.values_list("pk", flat=True):
        BackfillJob.objects.filter(pk=pk).update(heartbeat_at=now)
        resent.append(pk)
        queue_job(pk)
    if requeued or failed or resent:
        logger.warning(
            "backfill recovery: re-queued %s, failed %s, resent %s", requeued, failed, resent
        )
    return {"requeued": requeued, "failed": failed, "resent": resent}


def room_for_target(target: str) -> MatrixRoom:
    """A Matrix room id (`!…`) or a conversation id, for the ops command."""
    if target.startswith("!"):
        return MatrixRoom.objects.select_related("connection").get(room_id=target)
    conversation = Conversation.objects.get(pk=int(target))
    return MatrixRoom.objects.select_related("connection").get(room_id=conversation.external_id)
