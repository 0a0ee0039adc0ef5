"""A whole mailbox imported as a long job (R14): 202 + job id, progress, one run per mailbox,
heartbeat fencing and stale-run recovery (crm/jobs.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Message
from crm import jobs
from crm.models import Job
from integrations.email import import_job
from tests import factories

from .conftest import customer_mail

pytestmark = pytest.mark.django_db


def _mails(n):
    return [
        customer_mail(sender=f"c{i}@example.com", subject=f"s {i}", message_id=f"imp{i}@ex")[0]
        for i in range(n)
    ]


@pytest.fixture
def staff_client():
    client = APIClient()
    client.force_authenticate(factories.UserFactory(is_staff=True))
    return client


def test_import_answers_202_with_a_job_that_ends_with_its_counts(
    account, imap, staff_client, django_capture_on_commit_callbacks
):
    imap.append(_mails(250))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/api/v1/channels/{account.channel_id}/email-import/")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "done", job.error
    assert job.progress == {"scanned": 250, "stored": 250, "total": 250}
    assert job.result == {"scanned": 250, "stored": 250}
    assert Message.objects.filter(channel=account.channel).count() == 250
    status = staff_client.get(response.json()["status_url"])
    assert status.status_code == 200 and status.json()["state"] == "done"


def test_one_import_per_mailbox_at_a_time(account, staff_client):
    first = import_job.start_import(account)  # queued (eager tasks run only after commit)
    second = staff_client.post(f"/api/v1/channels/{account.channel_id}/email-import/")
    assert second.status_code == 409
    assert second.json()["id"] == first.pk


def test_managers_cannot_start_imports_or_read_others_jobs(account, manager):
    client = APIClient()
    client.force_authenticate(manager)
    assert client.post(f"/api/v1/channels/{account.channel_id}/email-import/").status_code == 403
    job = import_job.start_import(account)
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404


def test_a_channel_without_mailbox_is_a_404_naming_it(staff_client, channel):
    response = staff_client.post(f"/api/v1/channels/{channel.pk}/email-import/")
    assert response.status_code == 404 and "no email account" in response.json()["detail"]


def test_a_quiet_run_is_requeued_and_its_old_run_stops_at_its_next_heartbeat(account, imap):
    imap.append(_mails(3))
    job = import_job.start_import(account)
    # A run claimed it, then its worker went quiet.
    Job.objects.filter(pk=job.pk).update(
        state="running",
        attempt=1,
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - jobs.STALE_AFTER - timedelta(seconds=1),
    )
    old_run = jobs.Progress(Job.objects.get(pk=job.pk), attempt=1)
    outcome = jobs.recover_stale_jobs()
    assert outcome["requeued"] == [job.pk]
    job.refresh_from_db()
    assert job.state == "done" and job.attempt == 2  # re-queued and run again (eager)
    assert Message.objects.filter(channel=account.channel).count() == 3
    with pytest.raises(jobs.Superseded):
        old_run.beat(scanned=1)


def test_a_run_that_keeps_dying_is_failed_after_the_last_attempt(account):
    job = import_job.start_import(account)
    Job.objects.filter(pk=job.pk).update(
        state="running",
        attempt=jobs.MAX_ATTEMPTS,
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - jobs.STALE_AFTER - timedelta(seconds=1),
    )
    assert jobs.recover_stale_jobs()["failed"] == [job.pk]
    job.refresh_from_db()
    assert job.state == "failed" and "no heartbeat" in job.error
