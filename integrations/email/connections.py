"""Opening the mailbox's IMAP and SMTP connections, and saying in plain words why not."""

import imaplib
import smtplib
import socket
import ssl

from .models import EmailAccount, Security

TIMEOUT = 30


class MailboxError(Exception):
    """The mail server could not be used; the text is meant for staff."""


def open_imap(account: EmailAccount) -> imaplib.IMAP4:
    host, port = account.imap_host, account.imap_port
    try:
        if account.imap_security == Security.TLS:
            conn = imaplib.IMAP4_SSL(
                host, port, ssl_context=ssl.create_default_context(), timeout=TIMEOUT
            )
        else:
            conn = imaplib.IMAP4(host, port, timeout=TIMEOUT)
            if account.imap_security == Security.STARTTLS:
                conn.starttls(ssl_context=ssl.create_default_context())
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"IMAP: cannot reach {host}:{port} — {_network_words(exc)}") from exc
    try:
        conn.login(account.imap_user, account.secrets.get("imap_password", ""))
    except imaplib.IMAP4.error as exc:
        _close_imap(conn)
        raise MailboxError(
            f"IMAP: {host} refused the user name or password for '{account.imap_user}' "
            f"({_text(exc)})"
        ) from exc
    return conn


def _close_imap(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


def open_smtp(account: EmailAccount) -> smtplib.SMTP:
    """Connected and logged in. Raises smtplib / OSError errors as they come: the caller
    decides what is temporary (see provider.py)."""
    host, port = account.smtp_host, account.smtp_port
    if account.smtp_security == Security.TLS:
        conn = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
    else:
        conn = smtplib.SMTP(host, port, timeout=TIMEOUT)
        if account.smtp_security == Security.STARTTLS:
            conn.starttls(context=ssl.create_default_context())
    if account.smtp_user:
        try:
            conn.login(account.smtp_user, account.secrets.get("smtp_password", ""))
        except Exception:
            conn.close()
            raise
    return conn


def test_connection(account: EmailAccount) -> list[str]:
    """Log in to both servers; one line per server, saying what worked or what failed."""
    lines = []
    try:
        conn = open_imap(account)
        try:
            typ, data = conn.select(quote_folder(account.imap_folder), readonly=True)
            if typ != "OK":
                lines.append(
                    f"IMAP: logged in, but the folder '{account.imap_folder}' cannot be opened "
                    f"({_text(data)})"
                )
            else:
                count = int((data or [b"0"])[0] or 0)
                lines.append(
                    f"IMAP: OK — logged in to {account.imap_host} as {account.imap_user}; "
                    f"'{account.imap_folder}' holds {count} mails"
                )
        finally:
            _close_imap(conn)
    except MailboxError as exc:
        lines.append(str(exc))
    try:
        conn = open_smtp(account)
        conn.quit()
        lines.append(f"SMTP: OK — {account.smtp_host}:{account.smtp_port} accepts our login")
    except smtplib.SMTPAuthenticationError as exc:
        lines.append(
            f"SMTP: {account.smtp_host} refused the user name or password for "
            f"'{account.smtp_user}' ({exc.smtp_code} {_text(exc.smtp_error)})"
        )
    except smtplib.SMTPNotSupportedError:
        lines.append(
            f"SMTP: {account.smtp_host} does not offer what the security setting asks for "
            "(STARTTLS or login): check 'SMTP security' and the port"
        )
    except (OSError, smtplib.SMTPException) as exc:
        lines.append(
            f"SMTP: cannot reach {account.smtp_host}:{account.smtp_port} — {_network_words(exc)}"
        )
    return lines


def quote_folder(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


def _network_words(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve (check the spelling)"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (wrong port, or the server is down)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer within 30 s (firewall, or wrong host/port)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc}); check the security setting and the port"
    return f"{exc.__class__.__name__}: {exc}"
