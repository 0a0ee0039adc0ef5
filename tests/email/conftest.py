"""Email tests talk to real servers in this process: pymap (IMAP) and aiosmtpd (SMTP)."""

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.utils import timezone

from communications.models import Channel
from integrations.email.devservers import ImapServer, SmtpServer
from integrations.email.models import EmailAccount, Security
from tests import factories


@pytest.fixture
def imap():
    with ImapServer() as server:
        yield server


@pytest.fixture
def smtp():
    with SmtpServer(user="support@acme.test", password="smtp-pass") as server:
        yield server


@pytest.fixture
def email_channel(db):
    return factories.ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail", secrets={})


@pytest.fixture
def account(email_channel, imap, smtp):
    return EmailAccount.objects.create(
        channel=email_channel,
        imap_host=imap.host,
        imap_port=imap.port,
        imap_security=Security.NONE,
        imap_user=imap.user,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_security=Security.NONE,
        smtp_user="support@acme.test",
        from_address="support@acme.test",
        from_name="Acme Support",
        secrets={"imap_password": imap.password, "smtp_password": "smtp-pass"},
    )


@pytest.fixture
def email_manager(email_channel):
    team = factories.TeamFactory()
    email_channel.teams.add(team)
    user = factories.UserFactory(username="alice", first_name="Alice", last_name="Martin")
    team.members.add(user)
    return user


def customer_mail(
    *,
    sender="Bob Customer <bob@example.com>",
    subject="Order question",
    body="Where is my order 1234?",
    message_id=None,
    in_reply_to=None,
    references=None,
    to="Acme Support <support@acme.test>",
    cc=None,
) -> tuple[bytes, str]:
    """A mail as a customer's client writes it; returns (raw bytes, Message-ID without <>)."""
    mail = EmailMessage()
    message_id = message_id or make_msgid(domain="example.com")[1:-1]
    mail["Message-ID"] = f"<{message_id}>"
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    mail["Date"] = format_datetime(timezone.now())
    if in_reply_to:
        mail["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        mail["References"] = " ".join(f"<{mid}>" for mid in references)
    mail.set_content(body)
    return bytes(mail), message_id
