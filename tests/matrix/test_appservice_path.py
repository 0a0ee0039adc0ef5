"""WhatsApp through Matrix, fed by Synapse's appservice push to a live Switchboard."""

import json
import time

import pytest
from django.test import Client
from django.utils import timezone

from communications.models import (
    Attachment,
    Contact,
    Conversation,
    Message,
    RealtimeEvent,
    WebhookDelivery,
)
from communications.services.send import retry_failed_message, send_message
from communications.tasks import deliver_message
from integrations.matrix import appservice, mapper, settings_cache
from integrations.matrix import client as matrix_client
from integrations.matrix.models import MatrixRoom
from tests.matrix_harness.bridge_emulator import solid_png

from .conftest import connect_manager, whatsapp_channel
from .stack import wait_until

pytestmark = [pytest.mark.matrix, pytest.mark.django_db(transaction=True)]

CUSTOMER = "15551234567"


@pytest.fixture
def manager(stack):
    stack.configure(auth_mode="appservice")
    stack.kick_appservice()
    return connect_manager(stack, f"wa-{time.monotonic_ns()}")


def portal_with(stack, connection, ghost=CUSTOMER, name="Alice"):
    room_id = stack.bridge.create_portal(connection.matrix_user_id, ghost, name=name)
    wait_until(lambda: MatrixRoom.objects.filter(room_id=room_id).exists(), what="portal joined")
    return room_id


def messages(*event_ids):
    return Message.objects.filter(external_id__in=event_ids)


def files_written(*event_ids) -> bool:
    """An attachment's file is written right after its row commits (communications/files.py,
    before the message is announced): a reader polling the rows from another thread can see a
    row a moment before its file."""
    attachments = Attachment.objects.filter(message__external_id__in=event_ids)
    return all(a.file and a.file.storage.exists(a.file.name) for a in attachments)


def test_text_image_video_arrive_as_one_conversation_with_one_contact(stack, manager):
    _, connection = manager
    room = portal_with(stack, connection)
    image = solid_png(32, 24)
    video = b"\x00\x00\x00\x18ftypmp42" + b"v" * 2048
    ids = [
        stack.bridge.send_text(room, CUSTOMER, "Hi, where is my order?"),
        stack.bridge.send_image(room, CUSTOMER, image, width=32, height=24),
        stack.bridge.send_video(room, CUSTOMER, video),
    ]
    wait_until(
        lambda: messages(*ids).count() == 3 and files_written(*ids),
        what="three messages and their files",
    )

    conversation = Conversation.objects.get(channel=whatsapp_channel())
    assert conversation.external_id == room
    assert Conversation.objects.count() == 1
    assert Contact.objects.count() == 1
    contact = conversation.contact
    assert (contact.name, contact.phone) == ("Alice", f"+{CUSTOMER}")
    text, img, vid = (Message.objects.get(external_id=i) for i in ids)
    assert (text.kind, text.content, text.direction) == ("text", "Hi, where is my order?", "in")
    assert (img.kind, vid.kind) == ("image", "video")
    img_file = Attachment.objects.get(message=img)
    vid_file = Attachment.objects.get(message=vid)
    assert img_file.file.read() == image and (img_file.width, img_file.height) == (32, 24)
    assert vid_file.file.read() == video and vid_file.mime_type == "video/mp4"
    assert vid_file.duration_ms == 3000
    assert {m.sender_contact_id for m in (text, img, vid)} == {contact.pk}


def test_reply_reaches_the_room_once_when_the_worker_dies_after_sending(
    stack, manager, monkeypatch
):
    user, connection = manager
    room = portal_with(stack, connection)
    first = stack.bridge.send_text(room, CUSTOMER, "hello?")
    wait_until(lambda: messages(first).exists())
    conversation = Conversation.objects.get(external_id=room)

    real_send = matrix_client.MatrixClient.send_event
    died = []

    def send_then_die(self, *args, **kwargs):
        event_id = real_send(self, *args, **kwargs)
        if not died:
            died.append(event_id)
            raise SystemExit("worker killed after the homeserver took the event")
        return event_id

    monkeypatch.setattr(matrix_client.MatrixClient, "send_event", send_then_die)
    with pytest.raises(SystemExit):
        send_message(conversation=conversation, user=user, client_id="r-1", content="On its way!")
    message = Message.objects.get(client_id="r-1")
    assert message.status == "sending"  # the worker died holding its claim
    # The broker redelivers the task: while the dead worker's lease lasts it sends nothing…
    assert deliver_message(message.pk) == "claimed elsewhere"
    Message.objects.filter(pk=message.pk).update(lease_until=timezone.now())  # …then it ends:
    # a Matrix resend is safe (same transaction id → the homeserver's first event).
    assert deliver_message(message.pk) == "sent"
    message.refresh_from_db()
    assert message.external_id == died[0]
    stack.bridge.wait_delivered(1)
    wait_until(lambda: stack.bridge.delivered_in(room), what="relay")
    time.sleep(0.5)  # give a (wrong) second event the chance to show up
    delivered = [d for d in stack.bridge.delivered_in(room) if d["content"].get("body")]
    assert [d["content"]["body"] for d in delivered] == ["On its way!"]
    assert delivered[0]["event_id"] == died[0]
    # the bridge's SUCCESS + m.read receipt: delivered
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered")


def test_edits_reactions_replies_and_deletions(stack, manager):
    _, connection = manager
    room = portal_with(stack, connection)
    original = stack.bridge.send_text(room, CUSTOMER, "I ordered 2 boxes")
    wait_until(lambda: messages(original).exists())
    stack.bridge.send_edit(room, CUSTOMER, original, "I ordered 3 boxes")
    stack.bridge.send_reaction(room, CUSTOMER, original, "👍")
    reply = stack.bridge.send_text(room, CUSTOMER, "see above", reply_to=original)
    wait_until(lambda: messages(reply).exists())
    message = Message.objects.get(external_id=original)
    wait_until(lambda: Message.objects.get(pk=message.pk).metadata.get("reactions"))
    message.refresh_from_db()
    assert (message.content, message.is_edited) == ("I ordered 3 boxes", True)
    ghost = stack.bridge.ghost_mxid(CUSTOMER)
    assert message.metadata["reactions"][ghost]["key"] == "👍"
    assert Message.objects.get(external_id=reply).reply_to_id == message.pk

    stack.bridge.redact(room, CUSTOMER, original)
    wait_until(lambda: Message.objects.get(pk=message.pk).is_deleted, what="deletion")
    message.refresh_from_db()
    assert message.content == ""
    updates = RealtimeEvent.objects.filter(type="message.updated", payload__id=message.pk)
    assert updates.count() == 3  # edit, reaction, deletion — each once
    assert Message.objects.filter(conversation__external_id=room).count() == 2


def test_own_phone_messages_are_outbound(stack, manager):
    _, connection = manager
    room = portal_with(stack, connection)
    first = stack.bridge.send_text(room, CUSTOMER, "hi")
    own = stack.bridge.send_own_text(room, "Answered from my phone")
    wait_until(lambda: messages(first, own).count() == 2)
    message = Message.objects.get(external_id=own)
    assert (message.direction, message.status, message.sender_contact_id) == ("out", "sent", None)
    assert Contact.objects.count() == 1


def test_permanent_bridge_failure_marks_the_message_failed(stack, manager):
    user, connection = manager
    room = portal_with(stack, connection)
    first = stack.bridge.send_text(room, CUSTOMER, "hi")
    wait_until(lambda: messages(first).exists())
    stack.bridge.fail_next_send("FAIL_PERMANENT", "recipient is not on WhatsApp")
    conversation = Conversation.objects.get(external_id=room)
    send_message(conversation=conversation, user=user, client_id="f-1", content="hello")
    wait_until(lambda: Message.objects.get(client_id="f-1").status == "failed", what="failed")
    message = Message.objects.get(client_id="f-1")
    assert "recipient is not on WhatsApp" in message.failure_reason

    # Staff retry it: a new Matrix event (the refused one's transaction id would only give the
    # refused event back), which the bridge now relays.
    refused = message.external_id
    assert refused
    assert retry_failed_message(message)
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", what="resent")
    message.refresh_from_db()
    assert message.external_id != refused
    assert [d["content"]["body"] for d in stack.bridge.delivered_in(room)][-1] == "hello"


def test_lid_contact_whose_phone_becomes_known_stays_one_contact(stack, manager):
    _, connection = manager
    lid = "lid-123456789012345"
    room = portal_with(stack, connection, ghost=lid, name="Bob")
    first = stack.bridge.send_text(room, lid, "hello from a LID")
    wait_until(lambda: messages(first).exists())
    contact = Contact.objects.get()
    assert (contact.name, contact.phone) == ("Bob", "")

    # The bridge learns the number: the ghost's profile now carries it.
    stack.bridge.ensure_ghost(lid, name="Bob", phone="15559876543", identifiers=True)
    second = stack.bridge.send_text(room, lid, "still me")
    wait_until(
        lambda: Contact.objects.get(pk=contact.pk).phone == "+15559876543", what="phone learnt"
    )
    # …and a later chat under the phone JID is still the same person.
    phone_room = portal_with(stack, connection, ghost="15559876543", name="Bob")
    third = stack.bridge.send_text(phone_room, "15559876543", "me again, by phone")
    wait_until(lambda: messages(second, third).count() == 2)
    assert Contact.objects.count() == 1
    assert set(Message.objects.values_list("sender_contact_id", flat=True)) == {contact.pk}


def test_receipts_move_status_forward_only_even_out_of_order(stack, manager):
    user, connection = manager
    room = portal_with(stack, connection)
    first = stack.bridge.send_text(room, CUSTOMER, "hi")
    wait_until(lambda: messages(first).exists())
    conversation = Conversation.objects.get(external_id=room)
    send_message(conversation=conversation, user=user, client_id="s-1", content="thanks")
    wait_until(lambda: Message.objects.get(client_id="s-1").status == "delivered")
    message = Message.objects.get(client_id="s-1")
    stack.bridge.read_by_ghost(room, message.external_id)
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "read")
    # A late "delivered" (the bot's receipt again, out of order) changes nothing.
    bot = f"@whatsappbot:{stack.synapse.server_name}"
    body = {
        "events": [],
        "ephemeral": [
            {
                "type": "m.receipt",
                "room_id": room,
                "content": {message.external_id: {"m.read": {bot: {"ts": 1}}}},
            }
        ],
    }
    response = Client().put(
        "/matrix/appservice/_matrix/app/v1/transactions/late-1",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {stack.crm.hs_token}",
    )
    assert response.status_code == 200
    wait_until(lambda: processed("late-1", body), what="the late receipt drained")
    assert Message.objects.get(pk=message.pk).status == "read"


def processed(txn_id: str, body: dict) -> bool:
    """The transaction's delivery was processed: a 200 means only that it was stored, and a
    drain running on another thread (Synapse's own pushes) may be the one that takes it."""
    key = appservice.transaction_key(txn_id, json.dumps(body).encode())
    return WebhookDelivery.objects.filter(
        source="matrix", verdict="accepted", dedup_key=key, outcome="done"
    ).exists()


def _txn(stack, txn_id, body, token):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().put(
        f"/matrix/appservice/_matrix/app/v1/transactions/{txn_id}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def test_hs_token_checked_and_transactions_idempotent(stack, manager):
    _, connection = manager
    room = portal_with(stack, connection)
    ghost = stack.bridge.ghost_mxid(CUSTOMER)
    event = {
        "type": "m.room.message",
        "room_id": room,
        "sender": ghost,
        "event_id": "$made-up-event-1",
        "origin_server_ts": int(time.time() * 1000),
        "content": {"msgtype": "m.text", "body": "pushed by hand"},
    }
    body = {"events": [event]}
    assert _txn(stack, "x-1", body, "wrong-token").status_code == 403
    assert _txn(stack, "x-1", body, None).status_code == 401
    assert not messages("$made-up-event-1").exists()
    # Refused requests record nothing. The key is the txn id plus a body digest, so look for
    # any key of this txn (Synapse's own txns, from the login above, have numeric ids).
    assert not WebhookDelivery.objects.filter(dedup_key__startswith="x-1:").exists()

    assert _txn(stack, "x-1", body, stack.crm.hs_token).status_code == 200
    assert _txn(stack, "x-1", body, stack.crm.hs_token).status_code == 200
    assert _txn(stack, "x-2", body, stack.crm.hs_token).status_code == 200  # same event again
    wait_until(lambda: processed("x-1", body) and processed("x-2", body), what="both drained")
    assert messages("$made-up-event-1").count() == 1
    assert Message.objects.filter(conversation__external_id=room).count() == 1


def test_reused_txn_id_with_a_new_body_is_processed_and_a_true_resend_is_not(
    stack, manager, monkeypatch
):
    """Synapse on SQLite numbers appservice txns from 1 again after a restart: the same txn
    id with a different body is a new transaction; with the same body it is a re-send."""
    _, connection = manager
    room = portal_with(stack, connection)
    ghost = stack.bridge.ghost_mxid(CUSTOMER)

    def event(n: int) -> dict:
        return {
            "type": "m.room.message",
            "room_id": room,
            "sender": ghost,
            "event_id": f"$reused-txn-event-{n}",
            "origin_server_ts": int(time.time() * 1000),
            "content": {"msgtype": "m.text", "body": f"message {n}"},
        }

    handled = []
    real_handle = mapper.handle_events

    def counting(events, *, source):
        # Synapse's own pushes (the live server) go through here too: count only ours.
        ours = [e["event_id"] for e in events if e["event_id"].startswith("$reused-txn-")]
        if ours:
            handled.append(ours)
        return real_handle(events, source=source)

    monkeypatch.setattr(mapper, "handle_events", counting)
    first = {"events": [event(1)]}
    assert _txn(stack, "reuse-7", first, stack.crm.hs_token).status_code == 200
    wait_until(lambda: processed("reuse-7", first), what="the first txn drained")
    assert _txn(stack, "reuse-7", first, stack.crm.hs_token).status_code == 200  # a true re-send
    assert handled == [["$reused-txn-event-1"]]

    # After a homeserver restart the txn id comes again, carrying a new event.
    second = {"events": [event(2)]}
    assert _txn(stack, "reuse-7", second, stack.crm.hs_token).status_code == 200
    wait_until(lambda: processed("reuse-7", second), what="the second txn drained")
    # The re-send was logged as a duplicate and never handed to the mapper.
    assert handled == [["$reused-txn-event-1"], ["$reused-txn-event-2"]]
    assert messages("$reused-txn-event-1", "$reused-txn-event-2").count() == 2
    assert _txn(stack, "reuse-7", second, stack.crm.hs_token).status_code == 200
    duplicates = WebhookDelivery.objects.filter(
        source="matrix", verdict="duplicate", reason__contains="reuse-7:"
    )
    assert duplicates.count() == 2
    assert len(handled) == 2
    keys = set(
        WebhookDelivery.objects.filter(
            source="matrix", verdict="accepted", dedup_key__startswith="reuse-7:"
        ).values_list("dedup_key", flat=True)
    )
    assert keys == {
        appservice.transaction_key("reuse-7", json.dumps(first).encode()),
        appservice.transaction_key("reuse-7", json.dumps(second).encode()),
    }


def test_unconfigured_endpoint_answers_503(stack, db):
    settings_cache.invalidate()  # the table was flushed behind the cache's back
    response = _txn(stack, "u-1", {"events": []}, "anything")
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]


def test_a_managers_image_reaches_the_room_through_the_media_repository(
    stack, manager, settings, tmp_path
):
    import requests
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path
    user, connection = manager
    room = portal_with(stack, connection)
    first = stack.bridge.send_text(room, CUSTOMER, "a photo of the label, please")
    wait_until(lambda: messages(first).exists())
    conversation = Conversation.objects.get(external_id=room)
    png = solid_png(16, 12)
    attachment = Attachment(filename="label.png", mime_type="image/png", size=len(png))
    attachment.file.save("label.png", ContentFile(png), save=False)

    send_message(conversation=conversation, user=user, client_id="img-1", attachments=(attachment,))

    def relayed_images():
        return [
            d for d in stack.bridge.delivered_in(room) if d["content"].get("msgtype") == "m.image"
        ]

    wait_until(relayed_images, what="image relayed")
    image = relayed_images()[0]
    message = Message.objects.get(client_id="img-1")
    assert image["event_id"] == message.external_id
    assert image["content"]["info"]["mimetype"] == "image/png"
    server, media_id = image["content"]["url"].removeprefix("mxc://").split("/", 1)
    download = requests.get(
        f"{stack.synapse.base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
        headers={"Authorization": f"Bearer {stack.bridge.as_token}"},
        timeout=10,
    )
    assert download.status_code == 200 and download.content == png
    time.sleep(0.5)  # a (wrong) second copy would show up by now
    assert len(relayed_images()) == 1
