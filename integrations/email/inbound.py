"""Polling a mailbox folder by UID, into the one ingest path.

Each batch runs in one transaction that holds the folder's `MailboxState` row lock:
read `last_uid`, fetch the next UIDs, parse, thread, ingest, store the new `last_uid`, commit.
So a crash mid-batch rolls the batch back and the next run fetches it again (and ingest's
Message-ID dedup backs that up); two pollers of one folder take turns on the row lock and each
starts after what the other committed: nothing is imported twice, nothing skipped. When the
server's UIDVALIDITY changes, `last_uid` starts again from 0; the mails re-fetched then are
found by their Message-ID and stored once.
"""

import imaplib
import logging
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from communications.services.ingest import InboundMessage, InboundSender, ingest_messages

from .connections import MailboxError, _close_imap, open_imap, quote_folder
from .models import EmailAccount, MailboxState
from .parse import ParsedMail, parse_mail
from .threading import assign_conversations

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
_FETCH_UID = re.compile(rb"UID (\d+)")


@dataclass
class PollResult:
    fetched: int = 0
    stored: int = 0
    uidvalidity_reset: bool = False
    remaining: int = 0  # new mails left in the folder after the last batch


def poll_account(
    account: EmailAccount, *, batch_size: int = BATCH_SIZE, on_batch=None
) -> PollResult:
    """Fetch and store everything new in the account's folder. `on_batch(result)` runs after
    each committed batch (progress for jobs, a hook for tests)."""
    folder = account.imap_folder
    state, _ = MailboxState.objects.get_or_create(account=account, folder=folder)
    result = PollResult()
    conn = open_imap(account)
    try:
        typ, data = conn.select(quote_folder(folder), readonly=True)
        if typ != "OK":
            raise MailboxError(f"IMAP: the folder '{folder}' cannot be opened ({data})")
        uidvalidity = int(conn.response("UIDVALIDITY")[1][0])
        while True:
            with transaction.atomic():
                state = MailboxState.objects.select_for_update().get(pk=state.pk)
                if state.uidvalidity != uidvalidity:
                    if state.uidvalidity is not None:
                        logger.warning(
                            "%s/%s: UIDVALIDITY %s → %s; reading the folder again "
                            "(Message-ID dedup keeps what is stored)",
                            account,
                            folder,
                            state.uidvalidity,
                            uidvalidity,
                        )
                        result.uidvalidity_reset = True
                    state.uidvalidity, state.last_uid = uidvalidity, 0
                new = _new_uids(conn, state.last_uid)
                uids = new[:batch_size]
                result.remaining = len(new) - len(uids)
                if not uids:
                    state.save(update_fields=["uidvalidity", "last_uid", "updated_at"])
                    break
                raws = _fetch(conn, uids)
                stored = ingest_raw(account, [raws[uid] for uid in uids if uid in raws])
                state.last_uid = uids[-1]
                state.messages_imported += stored
                state.save()
            result.fetched += len(uids)
            result.stored += stored
            if on_batch:
                on_batch(result)
    finally:
        _close_imap(conn)
    return result


def _new_uids(conn: imaplib.IMAP4, last_uid: int) -> list[int]:
    typ, data = conn.uid("SEARCH", None, f"UID {last_uid + 1}:*")
    if typ != "OK":
        raise MailboxError(f"IMAP: UID SEARCH failed ({data})")
    # "n:*" always matches the highest UID, even below n: keep only what is really new.
    return sorted(uid for uid in map(int, (data[0] or b"").split()) if uid > last_uid)


def _fetch(conn: imaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
    typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise MailboxError(f"IMAP: UID FETCH failed ({data})")
    found = {}
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _FETCH_UID.search(item[0])
            if match:
                found[int(match.group(1))] = item[1]
    return found


def ingest_raw(account: EmailAccount, raws: list[bytes]) -> int:
    """Parse, thread and ingest raw mails; returns how many were new."""
    mails = [parse_mail(raw) for raw in raws]
    if not mails:
        return 0
    keys = assign_conversations(account, mails)
    items = [to_inbound(mail, key) for mail, key in zip(mails, keys, strict=True)]
    results = ingest_messages(account.channel, items)
    return sum(result.created for result in results)


def to_inbound(mail: ParsedMail, conversation_key: str) -> InboundMessage:
    address = mail.sender_address or "unknown-sender@invalid"
    return InboundMessage(
        sender=InboundSender(external_id=address, name=mail.sender_name, email=address),
        content=mail.text,
        external_id=mail.message_id,
        conversation_external_id=conversation_key,
        subject=mail.subject,
        timestamp=mail.date,
        attachments=tuple(mail.attachments),
        reply_to_external_id=mail.in_reply_to[0] if mail.in_reply_to else None,
        metadata=mail.metadata(),
    )


def poll_and_record(account: EmailAccount) -> PollResult | None:
    """A poll for beat and the command: the outcome is kept on the account for staff."""
    try:
        result = poll_account(account)
    except (MailboxError, OSError, imaplib.IMAP4.error) as exc:
        EmailAccount.objects.filter(pk=account.pk).update(
            last_polled_at=timezone.now(), last_poll_error=str(exc)[:2000]
        )
        logger.warning("email poll of %s failed: %s", account, exc)
        return None
    EmailAccount.objects.filter(pk=account.pk).update(
        last_polled_at=timezone.now(), last_poll_error=""
    )
    return result
