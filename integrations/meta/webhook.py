"""The Messenger / Instagram webhook: `/webhooks/meta/<channel_id>/`, a webhook-log receiver.

GET answers Meta's subscription challenge when `hub.verify_token` is the channel's. POST must
carry `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret), else 401 and
nothing is processed. The door stores the delivery and answers; the worker (`process`)
downloads media, then hands everything to the one ingest path in one batch:

- customers' messages (text, attachments, story replies and mentions, postbacks) → inbound;
- echoes of what the page sent: an echo of our own send updates the stored message (matched
  by the `metadata` we send, or by the message id the Send API returned), never a second one;
  a message sent from Meta's own inbox app is stored as outbound;
- deliveries and reads → the receipts service (forward only), reactions → the edits service.

Delivery is at least once: ingest deduplicates by `mid`.
"""

from django.http import HttpResponse

from communications.models import Channel, Message
from communications.services.edits import apply_reaction, apply_redaction
from communications.services.ingest import InboundMessage, ingest_messages
from communications.services.receipts import apply_receipt
from communications.services.send import update_message_status
from communications.webhooks import Inspection, Malformed, WebhookReceiver, WebhookRejected
from crm.safe_json import JSONRejected, load_json

from ..meta_signature import SIGNATURE_HEADER, answer_challenge, signature_is_valid
from .media import with_media
from .parse import Echo, ParsedWebhook, PayloadError, Receipt, account_id, parse_payload


class EchoBeforeAnswer(Exception):
    """An echo that may be of a send whose answer is not stored yet: the delivery is retried a
    little later (the webhook worker's backoff), when the answer's message id is stored."""


class MetaReceiver(WebhookReceiver):
    source = "meta"
    channel_kinds = (Channel.Kind.MESSENGER, Channel.Kind.INSTAGRAM)
    kept_headers = (SIGNATURE_HEADER,)

    def handshake(self, channel, request) -> HttpResponse:
        return answer_challenge(request, (channel.secrets or {}).get("verify_token", ""))

    def authenticate(self, channel, request, body: bytes) -> None:
        if not signature_is_valid(
            (channel.secrets or {}).get("app_secret", ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        ):
            raise WebhookRejected(f"missing or wrong {SIGNATURE_HEADER} signature")

    def inspect(self, channel, body: bytes) -> Inspection:
        try:
            payload = load_json(body)
        except JSONRejected as exc:
            raise Malformed(str(exc)) from exc
        try:
            parse_payload(payload, kind=channel.kind, account=account_id(channel))
        except PayloadError as exc:
            raise Malformed(f"not a Messenger/Instagram webhook payload: {exc}") from exc
        return Inspection()

    def process(self, channel, deliveries) -> None:
        process_payloads(channel, [load_json(bytes(d.body)) for d in deliveries])


def process_payloads(channel: Channel, payloads: list[dict]) -> int:
    """Everything the deliveries say, in one ingest batch; returns how many messages were
    newly stored. Idempotent: a replay changes nothing."""
    account = account_id(channel)
    parsed = [parse_payload(p, kind=channel.kind, account=account) for p in payloads]
    messages = [m for one in parsed for m in one.messages]
    echoes = [e for one in parsed for e in one.echoes]
    from_echoes, waiting = _echoes_to_store(channel, echoes)
    items = messages + from_echoes
    if any(one.has_media for one in parsed):
        # A redelivery must not download again what is already stored.
        known = set(
            Message.objects.filter(
                channel=channel, external_id__in=[m.external_id for m in items]
            ).values_list("external_id", flat=True)
        )
        items = with_media([m for m in items if m.external_id not in known])
    results = ingest_messages(channel, items) if items else []
    for one in parsed:
        _apply_changes(channel, one)
    if waiting:
        # Everything else is stored; the retry (idempotent) finds these echoes' sends settled.
        raise EchoBeforeAnswer(f"echoes {', '.join(waiting)} may be of replies still being sent")
    return sum(1 for result in results if result.created)


def _echoes_to_store(
    channel: Channel, echoes: list[Echo]
) -> tuple[list[InboundMessage], list[str]]:
    """The echoes that are messages we do not have yet (sent from Meta's own apps), and the
    mids of those that must wait for a send in flight."""
    if not echoes:
        return [], []
    mids = [e.message.external_id for e in echoes]
    known = set(
        Message.objects.filter(channel=channel, external_id__in=mids).values_list(
            "external_id", flat=True
        )
    )
    fresh = []
    for echo in echoes:
        mid = echo.message.external_id
        if mid in known:
            continue  # our send stored its id already, or an earlier echo was stored
        if echo.our_message_id is not None:
            _attach_mid(channel, echo.our_message_id, mid)
            continue
        fresh.append(echo)
    if not fresh:
        return [], []
    # Without our metadata (Instagram) an echo may overtake the answer of a send in flight,
    # name a part of a multi-part send, or be the proof that a reply left "unknown" arrived:
    # look at the conversations' own outbound messages.
    chats = {e.message.conversation_external_id for e in fresh}
    outbound = list(
        Message.objects.filter(
            channel=channel,
            conversation__external_id__in=chats,
            direction=Message.Direction.OUTBOUND,
            status__in=[Message.Status.SENDING, Message.Status.SENT, Message.Status.UNKNOWN],
        )
        .order_by("-id")
        .values("id", "status", "content", "external_id", "metadata", "conversation__external_id")[
            :200
        ]
    )
    part_mids = {
        str(mid)
        for row in outbound
        for mid in ((row["metadata"] or {}).get("meta_parts") or {}).values()
    }
    sending = {
        row["conversation__external_id"]
        for row in outbound
        if row["status"] == Message.Status.SENDING
    }
    unknown = {
        (row["conversation__external_id"], row["content"]): row["id"]
        for row in outbound
        if row["status"] == Message.Status.UNKNOWN and not row["external_id"]
    }
    stored, waiting = [], []
    for echo in fresh:
        mid, chat = echo.message.external_id, echo.message.conversation_external_id
        if mid in part_mids:
            continue
        if (chat, echo.message.content) in unknown:
            _attach_mid(channel, unknown.pop((chat, echo.message.content)), mid)
            continue
        if chat in sending:
            waiting.append(mid)
            continue
        stored.append(echo.message)
    return stored, waiting


def _attach_mid(channel: Channel, message_id: int, mid: str) -> None:
    """Our send's echo. While the send is in flight its own answer records the id; an echo
    of a message left "unknown" (the answer was lost) proves it arrived: sent, with its id."""
    message = (
        Message.objects.filter(pk=message_id, channel=channel, direction=Message.Direction.OUTBOUND)
        .values("external_id", "status")
        .first()
    )
    if message is None or message["status"] != Message.Status.UNKNOWN:
        return
    update_message_status(
        message_id, Message.Status.SENT, external_id=None if message["external_id"] else mid
    )


def _apply_changes(channel: Channel, parsed: ParsedWebhook) -> None:
    for mid in parsed.deleted_mids:
        apply_redaction(channel_id=channel.pk, external_id=mid)
    for reaction in parsed.reactions:
        apply_reaction(
            channel_id=channel.pk,
            external_id=reaction.mid,
            sender=reaction.customer_id,
            key=reaction.emoji,
        )
    for receipt in parsed.receipts:
        _apply_receipt(channel, receipt)


def _apply_receipt(channel: Channel, receipt: Receipt) -> None:
    """A receipt names messages (`mids`) or a time: everything sent before the watermark.
    Either way the receipts service moves statuses forward only."""
    mids = list(receipt.mids)
    if not mids and receipt.watermark is not None:
        newest = (
            Message.objects.filter(
                channel=channel,
                conversation__external_id=receipt.customer_id,
                direction=Message.Direction.OUTBOUND,
                external_id__isnull=False,
                created_at__lte=receipt.watermark,
            )
            .order_by("-created_at", "-id")
            .values_list("external_id", flat=True)
            .first()
        )
        mids = [newest] if newest else []
    for mid in mids:
        apply_receipt(
            channel_id=channel.pk,
            conversation_external_id=receipt.customer_id,
            external_id=mid,
            status=receipt.status,
        )
