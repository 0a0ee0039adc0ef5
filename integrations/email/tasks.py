"""Celery tasks of the email channel: thin wrappers around inbound.py."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .inbound import poll_and_record
from .models import EmailAccount


def due_accounts(now=None):
    """Accounts whose poll interval has passed since their last poll."""
    now = now or timezone.now()
    accounts = EmailAccount.objects.select_related("channel").filter(
        polling_enabled=True, channel__is_active=True
    )
    return [
        account
        for account in accounts
        if account.last_polled_at is None
        # a little slack: beat's minute and the poll's own duration should not skip a turn
        or account.last_polled_at <= now - timedelta(seconds=account.poll_interval_seconds - 5)
    ]


@shared_task
def poll_mailboxes() -> dict:
    """Beat, every minute: poll each mailbox whose interval has come round (per account,
    `poll_interval_seconds`). Two overlapping runs are safe (see inbound.py)."""
    done = {}
    for account in due_accounts():
        result = poll_and_record(account)
        done[account.pk] = result.stored if result else "error"
    return done
