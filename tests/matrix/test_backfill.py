"""History backfill of a portal room (R14) against the real Synapse and the bridge emulator."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Attachment, Conversation, Message
from integrations.matrix import backfill, mapper, tasks
from integrations.matrix.models import BackfillJob, MatrixRoom
from tests import factories

from .conftest import connect_manager, whatsapp_channel
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15553334444"
HISTORY = re.compile(r"^history #(\d+)")


@pytest.fixture
def manager(stack):
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    user, conn = connect_manager(stack, f"bf-{time.monotonic_ns()}")
    team = factories.TeamFactory()
    team.members.add(user)
    return user, conn


def grant(user):
    whatsapp_channel().teams.add(*user.teams.all())


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def portal(stack, connection, ghost=CUSTOMER, name="Erin"):
    room_id = stack.bridge.create_portal(connection.matrix_user_id, ghost, name=name)
    wait_until(lambda: MatrixRoom.objects.filter(room_id=room_id).exists(), what="portal joined")
    return room_id


def partly_ingested(monkeypatch, keep_every: int = 4):
    """Switchboard 'misses' most of the room's messages: the appservice path stores only
    `history #n` with n % keep_every == 0 (and room membership), drops everything else."""
    real = mapper.handle_events

    def keep(event) -> bool:
        if event.get("type") not in ("m.room.message", "m.sticker", "m.reaction"):
            return True
        match = HISTORY.match((event.get("content") or {}).get("body") or "")
        return bool(match) and int(match.group(1)) % keep_every == 0

    def filtered(events, *, source):
        return real([e for e in events if keep(e)], source=source)

    monkeypatch.setattr(mapper, "handle_events", filtered)


def test_backfill_stores_every_message_once_in_order(stack, manager, monkeypatch):
    user, connection_ = manager
    room = portal(stack, connection_)
    partly_ingested(monkeypatch)
    base = int((time.time() - 7200) * 1000)  # two hours ago, one second apart
    ids: dict[int, str] = {}
    for n in range(1, 113):
        ids[n] = stack.bridge.send_text(room, CUSTOMER, f"history #{n}", ts=base + n * 1000)
        if n in (30, 60, 90):
            stack.bridge.send_image(room, CUSTOMER, ts=base + n * 1000 + 500)
    stack.bridge.send_edit(room, CUSTOMER, ids[10], "history #10, edited")
    stack.bridge.send_reaction(room, CUSTOMER, ids[20], "👍")
    reply = stack.bridge.send_text(room, CUSTOMER, "history #113 (a reply)", reply_to=ids[5])
    marker = stack.bridge.send_text(room, CUSTOMER, "history #116")
    # Synapse pushes in order: once the marker is stored everything before it was seen.
    wait_until(lambda: Message.objects.filter(external_id=marker).exists(), what="marker")
    monkeypatch.undo()

    conversation = Conversation.objects.get(external_id=room)
    before = Message.objects.filter(conversation=conversation).count()
    assert before == 29  # #4, #8 … #112 and the marker: the rest is missing
    Conversation.objects.filter(pk=conversation.pk).update(status="resolved", unread_count=0)
    grant(user)

    started = api_for(user).post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/")
    assert started.status_code == 202, started.content
    job_id = started.json()["job_id"]
    assert started.json()["status_url"] == f"/integrations/whatsapp/backfill/{job_id}/"
    status = wait_until(
        lambda: (
            (s := api_for(user).get(started.json()["status_url"]).json())["status"]
            in ("done", "failed")
            and s
        ),
        what="the job to finish",
    )
    assert status["status"] == "done", status
    progress = status["progress"]
    messages = Message.objects.filter(conversation=conversation)
    expected = 112 + 3 + 2  # texts, images, the reply and the marker
    assert messages.count() == expected
    assert progress["messages_stored"] == expected - before
    assert progress["events_total"] == progress["events_processed"] == progress["events_seen"]
    assert progress["events_total"] >= expected + 2 and progress["percent"] == 100
    assert status["conversation_id"] == conversation.pk and status["finished_at"]

    # once each, in order by provider timestamp
    assert len(set(messages.values_list("external_id", flat=True))) == expected
    numbers = [
        int(HISTORY.match(c).group(1))
        for c in messages.order_by("created_at", "pk").values_list("content", flat=True)
        if HISTORY.match(c)
    ]
    assert numbers[:112] == list(range(1, 113)) and numbers[112:] == [113, 116]
    assert messages.filter(kind="image").count() == 3
    assert Attachment.objects.filter(message__conversation=conversation).count() == 3
    # edits and reactions found the message they change (the history is fed oldest first)
    tenth = Message.objects.get(external_id=ids[10])
    assert (tenth.content, tenth.is_edited) == ("history #10, edited", True)
    reacted = Message.objects.get(external_id=ids[20])
    assert reacted.metadata["reactions"][stack.bridge.ghost_mxid(CUSTOMER)]["key"] == "👍"
    assert (
        Message.objects.get(external_id=reply).reply_to_id
        == Message.objects.get(external_id=ids[5]).pk
    )
    # history is history: no unread count, no reopening, the newest message stays the preview
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread_count) == ("resolved", 0)
    assert conversation.last_message_preview == "history #116"

    # A second run finds nothing new: the same mapper recognises every event.
    again = api_for(user).post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/")
    assert again.status_code == 202
    job = BackfillJob.objects.get(pk=again.json()["job_id"])
    assert (job.state, job.messages_stored) == ("done", 0)
    assert messages.count() == expected


def test_one_run_at_a_time_per_room(stack, manager):
    user, connection_ = manager
    room_id = portal(stack, connection_)
    for n in range(1, 6):
        stack.bridge.send_text(room_id, CUSTOMER, f"history #{n}")
    conversation = wait_until(
        lambda: (
            Conversation.objects.filter(external_id=room_id, messages__content="history #5")
            .distinct()
            .first()
        ),
        what="messages",
    )
    grant(user)
    url = f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/"
    room = MatrixRoom.objects.get(room_id=room_id)

    # A queued job (no worker has picked it up yet) already blocks a second one.
    queued = backfill.request_backfill(room, user, queue=False)
    busy = api_for(user).post(url)
    assert busy.status_code == 409
    assert busy.json()["job_id"] == queued.pk and busy.json()["status"] == "queued"
    # …down to the database: the partial unique constraint refuses a second active row.
    with pytest.raises(IntegrityError), transaction.atomic():
        BackfillJob.objects.create(room=room, state="running")

    # While it runs, a request from another manager is refused, naming the running job.
    seen_while_running = []

    def on_page(job_id, phase):
        if not seen_while_running:
            response = api_for(user).post(url)
            seen_while_running.append((response.status_code, response.json()))

    assert backfill.run_job(queued.pk, on_page=on_page) == "done"
    assert seen_while_running[0][0] == 409
    assert seen_while_running[0][1]["job_id"] == queued.pk
    assert seen_while_running[0][1]["status"] == "running"
    assert BackfillJob.objects.count() == 1
    # A duplicate delivery of the task finds the job claimed and does nothing.
    assert backfill.run_job(queued.pk) == "skipped"

    # Eight simultaneous requests: one job.
    barrier = threading.Barrier(8)
    outcomes = []

    def race():
        try:
            barrier.wait(10)
            try:
                outcomes.append(backfill.request_backfill(room, user, queue=False).pk)
            except backfill.BackfillBusy as exc:
                outcomes.append(("busy", exc.job.pk))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    created = [o for o in outcomes if not isinstance(o, tuple)]
    assert len(outcomes) == 8 and len(created) == 1
    assert {o[1] for o in outcomes if isinstance(o, tuple)} == set(created)
    assert BackfillJob.objects.filter(room=room, state="queued").count() == 1

    # Ops: the command refuses while that job is active, runs once it is gone.
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already queued"):
        call_command("matrix_backfill", room_id)
    BackfillJob.objects.filter(pk=created[0]).update(state="failed")
    from io import StringIO

    out = StringIO()
    call_command("matrix_backfill", str(conversation.pk), stdout=out)
    assert ": done;" in out.getvalue() and "0 new messages" in out.getvalue()


def test_status_and_start_are_private_to_those_who_see_the_conversation(stack, manager):
    user, connection_ = manager
    room_id = portal(stack, connection_)
    stack.bridge.send_text(room_id, CUSTOMER, "history #1")
    conversation = wait_until(lambda: Conversation.objects.filter(external_id=room_id).first())
    outsider = factories.UserFactory(username=f"out-{time.monotonic_ns()}")
    assert (
        api_for(outsider)
        .post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/")
        .status_code
        == 404
    )
    staff = factories.UserFactory(username=f"staff-{time.monotonic_ns()}", is_staff=True)
    assert (
        api_for(staff).post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/").status_code
        == 404
    )
    staff = factories.UserFactory(
        username=f"super-{time.monotonic_ns()}", is_staff=True, is_superuser=True
    )
    started = api_for(staff).post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/")
    assert started.status_code == 202
    assert api_for(outsider).get(started.json()["status_url"]).status_code == 404
    assert APIClient().get(started.json()["status_url"]).status_code in (401, 403)
    assert api_for(staff).get(started.json()["status_url"]).json()["status"] == "done"


def test_stale_runs_are_recovered(stack, manager):
    user, connection_ = manager
    room_id = portal(stack, connection_)
    for n in range(1, 4):
        stack.bridge.send_text(room_id, CUSTOMER, f"history #{n}")
    wait_until(lambda: Message.objects.filter(content="history #3").exists())
    room = MatrixRoom.objects.get(room_id=room_id)
    now = timezone.now()

    # A worker died mid-run: running, no heartbeat for 200 s → re-queued, and run again.
    quiet = backfill.request_backfill(room, user, queue=False)
    claimed, attempt = backfill._claim(quiet.pk)
    BackfillJob.objects.filter(pk=quiet.pk).update(heartbeat_at=now - timedelta(seconds=200))
    # Another has run for 31 minutes though its heartbeat is fresh → failed.
    other = MatrixRoom.objects.create(
        room_id="!long-running:x", connection=connection_, kind=MatrixRoom.Kind.PORTAL
    )
    slow = BackfillJob.objects.create(
        room=other,
        state="running",
        attempt=1,
        started_at=now - timedelta(minutes=31),
        heartbeat_at=now - timedelta(seconds=5),
    )
    # A third has been re-queued twice already: its third silence is its last.
    third = MatrixRoom.objects.create(
        room_id="!flaky:x", connection=connection_, kind=MatrixRoom.Kind.PORTAL
    )
    flaky = BackfillJob.objects.create(
        room=third,
        state="running",
        attempt=backfill.MAX_ATTEMPTS,
        started_at=now - timedelta(minutes=10),
        heartbeat_at=now - timedelta(seconds=181),
    )
    # A fresh running job is left alone.
    fourth = MatrixRoom.objects.create(
        room_id="!busy:x", connection=connection_, kind=MatrixRoom.Kind.PORTAL
    )
    healthy = BackfillJob.objects.create(
        room=fourth,
        state="running",
        attempt=1,
        started_at=now - timedelta(minutes=2),
        heartbeat_at=now - timedelta(seconds=10),
    )

    result = tasks.recover_stale_backfills()  # what beat runs every minute
    assert result["requeued"] == [quiet.pk]
    assert sorted(result["failed"]) == sorted([slow.pk, flaky.pk])
    slow.refresh_from_db()
    flaky.refresh_from_db()
    assert slow.state == "failed" and "ran longer than" in slow.error and slow.finished_at
    assert flaky.state == "failed" and "gave up after 3 attempts" in flaky.error
    healthy.refresh_from_db()
    assert healthy.state == "running"

    # The re-queued job ran again (eager Celery here) and finished, as attempt 2…
    quiet.refresh_from_db()
    assert (quiet.state, quiet.attempt) == ("done", 2)
    assert quiet.events_processed == quiet.events_total > 0
    # …and the dead run, if it ever wakes up, is told it lost the job.
    with pytest.raises(backfill.Superseded):
        backfill._heartbeat(claimed, attempt, pages=99)
    assert BackfillJob.objects.get(pk=quiet.pk).pages != 99
