"""The appservice's transactions in the webhook log (communications/webhooks.py).

Synapse pushes a transaction (PUT /_matrix/app/v1/transactions/<txnId>, appservice.py) with
the events of every connected number, so it is stored as ONE delivery of no channel (source
"matrix", dedup key = `transaction_key`: a re-send is a duplicate) and answered at once. The
worker hands the waiting transactions, oldest first, to `MatrixReceiver.process`: all their
room events through one `mapper.handle_events` (new messages in one ingest batch per channel),
then their receipts and typing notices. MatrixUnavailable (the homeserver is down while we
need a room's state or a profile) fails the delivery; the log retries it with backoff, the
later transactions waiting behind it (`in_order`: an edit must not run before its message),
and what was stored before is skipped by event id.

Not served at /webhooks/matrix/<id>/ (no channel kinds): the hs_token check and the shape check
live in appservice.py, at the URL the registration names.
"""

import contextlib

from django.db import connection

from communications.webhooks import Inspection, Malformed, WebhookReceiver, WebhookRejected
from crm.safe_json import JSONRejected, load_json

from . import mapper
from .schema import transaction_shape_error

SOURCE = "matrix"
# PostgreSQL advisory lock key ("matrx"): one Matrix batch is mapped at a time, whichever
# drainer or worker claimed it.
ORDER_LOCK = 0x6D61747278


def parse_transaction(body: bytes) -> dict:
    """The transaction's JSON, shape-checked whole; Malformed with the reason otherwise."""
    try:
        payload = load_json(body or b"{}")
    except JSONRejected as exc:
        raise Malformed(str(exc)) from exc
    problem = transaction_shape_error(payload)
    if problem:
        raise Malformed(f"not an appservice transaction: {problem}")
    return payload


def ephemeral_of(payload: dict) -> list[dict]:
    return payload.get("ephemeral") or payload.get("de.sorunome.msc2409.ephemeral") or []


class MatrixReceiver(WebhookReceiver):
    source = SOURCE
    channel_kinds = ()  # deliveries of no channel: the generic door answers 404
    in_order = True  # an edit, reaction or deletion needs the earlier transaction's message

    def authenticate(self, channel, request, body: bytes) -> None:
        raise WebhookRejected("Matrix transactions arrive at /matrix/appservice/ with the hs_token")

    def inspect(self, channel, body: bytes) -> Inspection:
        parse_transaction(body)
        return Inspection()

    def process(self, channel, deliveries) -> None:
        payloads = [parse_transaction(bytes(d.body)) for d in deliveries]
        with one_batch_at_a_time():
            process_transactions(payloads)


@contextlib.contextmanager
def one_batch_at_a_time():
    """Synapse's transactions must be mapped in its order (an edit after the message it edits).
    Two drainers can each claim some of them: the one that claimed later waits here until the
    earlier batch is mapped. A session lock (released by PostgreSQL if the process dies)."""
    if connection.vendor != "postgresql":  # the embedded mode: one process drains
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ORDER_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ORDER_LOCK])


def process_transactions(payloads: list[dict]) -> int:
    """The transactions' room events as one batch, then their ephemeral events in order.
    Idempotent by event id (a replay, a retry after MatrixUnavailable, the sync feeder)."""
    events = [event for payload in payloads for event in payload.get("events") or []]
    ephemeral = [event for payload in payloads for event in ephemeral_of(payload)]
    used = mapper.handle_events(events, source="appservice") if events else 0
    return used + (mapper.handle_ephemeral(ephemeral) if ephemeral else 0)
