"""The Telegram webhook: `/webhooks/telegram/<channel_id>/`, a webhook-log receiver.

Telegram does not sign its updates: it sends back the `secret_token` we gave `setWebhook`
in `X-Telegram-Bot-Api-Secret-Token` (setup.py generates it and keeps it in the channel's
encrypted secrets). Compared in constant time; missing or wrong → 401, nothing processed.
Telegram retries an update until it gets a 2xx, so the log deduplicates by `update_id` and
ingest by `<chat id>:<message_id>`.
"""

import hmac

from communications.models import Channel, Message
from communications.services.edits import apply_edit
from communications.services.ingest import InboundMessage, ingest_messages
from communications.webhooks import Inspection, Malformed, WebhookReceiver, WebhookRejected
from crm.safe_json import JSONRejected, load_json

from .media import with_media
from .parse import PayloadError, parse_update

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramReceiver(WebhookReceiver):
    source = "telegram"
    channel_kinds = (Channel.Kind.TELEGRAM,)

    def authenticate(self, channel, request, body: bytes) -> None:
        expected = (channel.secrets or {}).get("webhook_secret", "")
        given = request.headers.get(SECRET_HEADER, "")
        if not expected:
            raise WebhookRejected(
                "this Telegram channel has no webhook secret yet: run "
                "`manage.py telegram_set_webhook` or the channel's admin action"
            )
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected(f"missing or wrong {SECRET_HEADER}")

    def inspect(self, channel, body: bytes) -> Inspection:
        try:
            payload = load_json(body)
        except JSONRejected as exc:
            raise Malformed(str(exc)) from exc
        try:
            update = parse_update(payload)
        except PayloadError as exc:
            raise Malformed(f"not a Telegram update: {exc}") from exc
        return Inspection(dedup_key=f"update:{update.update_id}")

    def process(self, channel, deliveries) -> None:
        process_updates(channel, [load_json(bytes(d.body)) for d in deliveries])


def process_updates(channel: Channel, payloads: list[dict]) -> int:
    """New messages of every update (media downloaded first) in one ingest batch, then the
    edits in order. Returns how many messages were newly stored. Idempotent: a replay finds
    every message stored and downloads nothing again."""
    updates = [parse_update(payload) for payload in payloads]
    messages = [u.message for u in updates if u.message is not None]
    edits = [u.edit for u in updates if u.edit is not None]
    ids = [m.external_id for m in messages] + [e.external_id for e in edits]
    known = set(
        Message.objects.filter(channel=channel, external_id__in=ids).values_list(
            "external_id", flat=True
        )
    )
    fresh = [m for m in messages if m.external_id not in known]
    # An edit of a message that never reached us (its update was lost) stores it as it reads now.
    orphans: dict[str, InboundMessage] = {}
    for edit in edits:
        if edit.external_id not in known and edit.external_id not in {m.external_id for m in fresh}:
            orphans[edit.external_id] = edit.message
    fresh += list(orphans.values())
    if any(a.data is None and a.provider_ref for m in fresh for a in m.attachments):
        fresh = with_media(channel, fresh)
    results = ingest_messages(channel, fresh) if fresh else []
    for edit in edits:
        if edit.external_id not in orphans:
            apply_edit(
                channel_id=channel.pk,
                external_id=edit.external_id,
                content=edit.content,
                edit_id=edit.edit_id,
                edited_at=edit.edited_at,
            )
    return sum(1 for result in results if result.created)
