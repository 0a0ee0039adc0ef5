"""Charsets, encoded headers, HTML and attachments, through a real IMAP fetch."""

import os

import pytest

from communications.models import Message
from integrations.email.inbound import poll_account
from integrations.email.parse import parse_mail

pytestmark = pytest.mark.django_db


def test_iso_8859_1_body_and_rfc2047_headers(account, imap):
    raw = (
        b"From: =?ISO-8859-1?Q?Ren=E9e_Dupr=E9?= <renee@example.fr>\r\n"
        b"To: support@acme.test\r\n"
        b"Subject: =?UTF-8?B?w4ljaGFuZ2UgZOKAmWFydGljbGUg4pyT?=\r\n"
        b"Message-ID: <latin1@example.fr>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Cr=E8me br=FBl=E9e, d=E9j=E0 pay=E9e.\r\n"
    )
    imap.append(raw)
    poll_account(account)
    message = Message.objects.get(channel=account.channel)
    assert message.content == "Crème brûlée, déjà payée."
    assert message.conversation.subject == "Échange d’article ✓"
    assert message.sender_contact.name == "Renée Dupré"
    assert message.metadata["email"]["from"]["address"] == "renee@example.fr"


def test_raw_8bit_latin1_body(account, imap):
    raw = (
        b"From: a@example.com\r\nSubject: 8bit\r\nMessage-ID: <8bit@example.com>\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Grüße aus Köln".encode("latin-1")
    )
    assert parse_mail(raw).text == "Grüße aus Köln"


def test_html_is_sanitised_and_remote_images_blocked():
    raw = (
        b"From: a@example.com\r\nSubject: html\r\nMessage-ID: <h@example.com>\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script>'
        b'<style>p{}</style><img src="https://tracker.example/p.gif" alt="x">'
        b'<a href="javascript:alert(1)">x</a>'
    )
    mail = parse_mail(raw)
    assert "script" not in mail.html and "onclick" not in mail.html and "<style" not in mail.html
    assert "javascript:" not in mail.html
    assert 'data-src="https://tracker.example/p.gif"' in mail.html
    assert " src=" not in mail.html
    assert mail.text == "Hi there\nx"  # the script and style are gone, not turned into text


def test_a_10_mb_attachment_is_stored_before_the_message_is_announced(
    account, imap, django_capture_on_commit_callbacks
):
    from email.message import EmailMessage

    data = os.urandom(10 * 1024 * 1024)
    mail = EmailMessage()
    mail["From"] = "big@example.com"
    mail["Subject"] = "the scan"
    mail["Message-ID"] = "<big@example.com>"
    mail.set_content("see attached")
    mail.add_attachment(data, maintype="application", subtype="pdf", filename="scan.pdf")
    mail.add_attachment(
        b"\x89PNG fake", maintype="image", subtype="png", filename="logo.png", cid="<logo@x>"
    )
    imap.append(bytes(mail))
    with django_capture_on_commit_callbacks(execute=True):  # files are written after commit
        poll_account(account)
    message = Message.objects.get(channel=account.channel)
    assert message.content == "see attached"
    attachments = {a.filename: a for a in message.attachments.all()}
    assert attachments["scan.pdf"].size == len(data)
    assert attachments["scan.pdf"].mime_type == "application/pdf"
    with attachments["scan.pdf"].file.open("rb") as handle:
        assert handle.read() == data
    assert attachments["logo.png"].mime_type == "image/png"
    assert message.metadata["email"]["inline_images"] == {"logo@x": "logo.png"}
