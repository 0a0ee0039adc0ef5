"""Polling by UID: restarts, crashes, two pollers and UIDVALIDITY changes never import a mail
twice or skip one."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection

from communications.models import Conversation, Message
from integrations.email.inbound import poll_account
from integrations.email.models import EmailAccount, MailboxState
from integrations.email.tasks import poll_mailboxes

from .conftest import customer_mail

pytestmark = pytest.mark.django_db


def _mails(n, prefix="m"):
    return [
        customer_mail(
            sender=f"c{i}@example.com", subject=f"{prefix} {i}", message_id=f"{prefix}{i}@ex"
        )[0]
        for i in range(n)
    ]


def test_a_restarted_poller_imports_nothing_again(account, imap):
    imap.append(_mails(5))
    assert poll_account(account, batch_size=2).stored == 5
    # A new process, a new IMAP connection: it starts after the stored last UID.
    again = EmailAccount.objects.get(pk=account.pk)
    result = poll_account(again)
    assert (result.fetched, result.stored) == (0, 0)
    imap.append(_mails(1, prefix="late"))
    assert poll_account(again).stored == 1
    assert Message.objects.filter(channel=account.channel).count() == 6


def test_a_crash_that_lost_the_last_uid_doubles_nothing(account, imap):
    """The worst crash: mails committed, but the poller's position lost (as if reset)."""
    imap.append(_mails(4))
    poll_account(account)
    MailboxState.objects.filter(account=account).update(last_uid=0)
    result = poll_account(account)
    assert (result.fetched, result.stored) == (4, 0)
    assert Message.objects.filter(channel=account.channel).count() == 4
    assert Conversation.objects.filter(channel=account.channel).count() == 4


def test_a_uidvalidity_change_doubles_nothing(account, imap):
    account.imap_folder = "Support"
    account.save()
    mails = _mails(3)
    imap.append(mails, folder="Support")
    poll_account(account)
    state = MailboxState.objects.get(account=account)
    # The server rebuilds the folder: new UIDVALIDITY, the same mails under new UIDs, plus one.
    imap.recreate_folder("Support")
    imap.append([*mails, *_mails(1, prefix="new")], folder="Support")
    result = poll_account(account)
    assert result.uidvalidity_reset
    assert (result.fetched, result.stored) == (4, 1)
    assert MailboxState.objects.get(account=account).uidvalidity != state.uidvalidity
    assert Message.objects.filter(channel=account.channel).count() == 4


def test_the_same_mail_in_two_folders_is_stored_once(account, imap):
    raw = _mails(1)[0]
    imap.append(raw)
    imap.append(raw, folder="Archive")
    poll_account(account)
    account.imap_folder = "Archive"
    account.save()
    assert poll_account(account).stored == 0
    assert Message.objects.filter(channel=account.channel).count() == 1


def test_dedup_by_message_id_is_a_database_constraint(account, imap):
    imap.append(_mails(1))
    poll_account(account)
    message = Message.objects.get(channel=account.channel)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            conversation=message.conversation,
            channel=message.channel,
            direction=message.direction,
            status=message.status,
            external_id=message.external_id,
            created_at=message.created_at,
        )


@pytest.mark.django_db(transaction=True)
def test_two_pollers_at_once_import_each_mail_once(account, imap):
    imap.append(_mails(30))
    results, errors = [], []

    def run():
        try:
            results.append(poll_account(EmailAccount.objects.get(pk=account.pk), batch_size=3))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sum(r.stored for r in results) == 30
    assert sum(r.fetched for r in results) == 30  # neither fetched what the other had
    assert Message.objects.filter(channel=account.channel).count() == 30
    assert MailboxState.objects.get(account=account).messages_imported == 30


def test_imap_poll_command_and_beat_task(account, imap, capsys):
    imap.append(_mails(2))
    call_command("imap_poll", "--channel", str(account.channel_id), "--once")
    assert f"channel {account.channel_id}: fetched 2, stored 2" in capsys.readouterr().out
    # Beat: just polled, so not due yet; due again once its interval has passed.
    assert poll_mailboxes() == {}
    EmailAccount.objects.filter(pk=account.pk).update(last_polled_at=None)
    imap.append(_mails(1, prefix="b"))
    assert poll_mailboxes() == {account.pk: 1}


def test_a_wrong_password_is_recorded_for_staff(account, imap, capsys):
    account.secrets = {**account.secrets, "imap_password": "wrong"}
    account.save()
    call_command("imap_poll", "--once")
    account.refresh_from_db()
    assert "refused the user name or password for 'demouser'" in account.last_poll_error
    assert account.last_poll_error in capsys.readouterr().err
