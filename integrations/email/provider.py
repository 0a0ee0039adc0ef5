"""Sending a manager's reply as an email, in the Celery worker (never in a request).

The mail carries our own Message-ID, recorded on the message BEFORE the SMTP transaction: a
retry or a redelivered task sends the same id again, so a customer's client shows one mail,
and the customer's reply threads by it (see threading.py). In-Reply-To and References come
from the message being answered (the newest mail of the thread unless the manager picked
one), the subject is the conversation's with a single "Re:", and the manager's name leads the
From display name.

Errors: a 4xx reply or a broken connection is temporary (the send path retries with backoff);
a 5xx reply is permanent and carries the server's own words.
"""

import html
import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from django.utils import timezone

from communications.models import Channel, Message

from ..base import PermanentDeliveryError, SendResult, TemporaryDeliveryError
from .connections import open_smtp
from .models import EmailAccount
from .parse import MAX_REFERENCES
from .threading import new_message_id, reply_subject


class EmailProvider:
    kind = Channel.Kind.EMAIL

    def __init__(self, channel: Channel):
        self.channel = channel
        self.account = EmailAccount.objects.filter(channel=channel).first()
        if self.account is None:
            raise PermanentDeliveryError(
                "this email channel has no mailbox settings yet: add them in admin → Email accounts"
            )

    def send(self, message: Message) -> SendResult:
        message_id = self._record_message_id(message)
        parent = _answered_message(message)
        chosen = (message.metadata or {}).get("email") or {}
        recipient = ", ".join(chosen.get("to") or []) or _recipient(message, parent)
        if not recipient:
            raise PermanentDeliveryError("the customer has no email address to reply to")
        mail = self.build(message, message_id=message_id, parent=parent, recipient=recipient)
        try:
            conn = open_smtp(self.account)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"the SMTP server refused our login: {exc.smtp_code} {_words(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _error_for(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryDeliveryError(
                f"cannot reach the SMTP server {self.account.smtp_host}: {exc}"
            ) from exc
        try:
            refused = conn.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _error_for(code, reason) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, …
            raise _error_for(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryDeliveryError(f"the SMTP connection broke: {exc}") from exc
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
        if refused:
            code, reason = next(iter(refused.values()))
            raise _error_for(code, reason)
        return SendResult(external_id=message_id)

    # -- the mail ----------------------------------------------------------------------------
    def _record_message_id(self, message: Message) -> str:
        """The Message-ID of this reply, stored before anything is sent; a later attempt
        reuses it."""
        if message.external_id:
            return message.external_id
        domain = self.account.from_address.rsplit("@", 1)[-1]
        message_id = new_message_id(self.channel.pk, message.conversation_id, message.pk, domain)
        Message.objects.filter(pk=message.pk, external_id__isnull=True).update(
            external_id=message_id
        )
        message.external_id = Message.objects.values_list("external_id", flat=True).get(
            pk=message.pk
        )
        return message.external_id

    def build(
        self, message: Message, *, message_id: str, parent: Message | None, recipient: str
    ) -> EmailMessage:
        account = self.account
        mail = EmailMessage()
        mail["Message-ID"] = f"<{message_id}>"
        mail["Date"] = format_datetime(message.created_at or timezone.now())
        mail["From"] = Address(_display_name(message, account), addr_spec=account.from_address)
        mail["To"] = recipient
        cc = ((message.metadata or {}).get("email") or {}).get("cc") or []
        if cc:
            mail["Cc"] = ", ".join(cc)
        mail["Subject"] = reply_subject(message.conversation.subject)
        if parent is not None and parent.external_id:
            references = (parent.metadata.get("email") or {}).get("references") or []
            chain = [*references, parent.external_id][-MAX_REFERENCES:]
            mail["In-Reply-To"] = f"<{parent.external_id}>"
            mail["References"] = " ".join(f"<{mid}>" for mid in chain)
        mail["Auto-Submitted"] = "no"
        text = message.content or ""
        mail.set_content(text)
        mail.add_alternative(_html_body(text), subtype="html")
        for attachment in message.loaded_attachments():
            with attachment.file.open("rb") as handle:
                data = handle.read()
            maintype, _, subtype = (attachment.mime_type or "application/octet-stream").partition(
                "/"
            )
            mail.add_attachment(
                data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename or "attachment",
            )
        return mail


def _answered_message(message: Message) -> Message | None:
    """The mail this reply answers: the one the manager picked, else the thread's newest
    message that has a Message-ID."""
    if message.reply_to_id:
        picked = Message.objects.filter(pk=message.reply_to_id).first()
        if picked is not None and picked.external_id:
            return picked
    # By arrival (id), not by Date header: a customer's clock, or a Date in whole seconds,
    # must not make our own earlier reply look newer than the mail that answered it.
    return (
        Message.objects.filter(
            conversation_id=message.conversation_id, external_id__isnull=False, pk__lt=message.pk
        )
        .exclude(kind=Message.Kind.NOTE)
        .order_by("-id")
        .first()
    )


def _recipient(message: Message, parent: Message | None) -> str:
    """The customer: the Reply-To or From of their newest mail, else the contact's address."""
    last_inbound = (
        parent
        if parent is not None and parent.direction == Message.Direction.INBOUND
        else Message.objects.filter(
            conversation_id=message.conversation_id, direction=Message.Direction.INBOUND
        )
        .order_by("-id")
        .first()
    )
    if last_inbound is not None:
        email = last_inbound.metadata.get("email") or {}
        address = email.get("reply_to") or (email.get("from") or {}).get("address")
        if address:
            return address
    contact = message.conversation.contact
    return contact.email or ""


def _display_name(message: Message, account: EmailAccount) -> str:
    user = message.sender_user
    manager = (user.get_full_name() or user.get_username()) if user else ""
    if manager and account.from_name:
        return f"{manager} | {account.from_name}"
    return manager or account.from_name


def _html_body(text: str) -> str:
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    body = "".join(
        "<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs if p
    )
    return f"<!DOCTYPE html>\n<html><body>\n{body}</body></html>\n"


def _words(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _error_for(code: int, reason) -> Exception:
    text = f"{code} {_words(reason)}".strip()
    if 400 <= code < 500:
        return TemporaryDeliveryError(f"the mail server said: {text}")
    return PermanentDeliveryError(f"the mail server refused the mail: {text}")
