"""Every conversation and message payload carries the row's `version`, bumped in the same
UPDATE as the change, so a page can drop a copy older than one it has.

The concurrency test runs two real transactions on PostgreSQL: the second waits for the
first's row lock, and its event must carry the row as both left it, with a higher version.
"""

import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction
from rest_framework.test import APIClient

from communications.access import access_conversation_by_id
from communications.models import Conversation, Message, RealtimeEvent
from communications.serializers import conversation_payload, message_payload
from communications.services.conversations import update_conversation
from communications.services.edits import apply_edit
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from communications.services.send import retry_failed_message, update_message_status
from tests import factories


def _payloads(event_type: str, conversation_id: int) -> list[dict]:
    return list(
        RealtimeEvent.objects.filter(type=event_type, conversation_id=conversation_id)
        .order_by("id")
        .values_list("payload", flat=True)
    )


def _wait_for_a_lock_waiter() -> None:
    """Until another session of this database waits for a row lock."""
    with connection.cursor() as cursor:
        for _ in range(500):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first one's lock")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_updates_the_later_event_is_the_row_with_a_higher_version(manager, channel):
    if connection.vendor != "postgresql":
        pytest.skip("row locks of two sessions need PostgreSQL")
    conversation = factories.ConversationFactory(channel=channel, unread_count=3, status="open")
    first_wrote, commit_first = threading.Event(), threading.Event()
    errors = []

    def resolve_and_hold():
        try:
            with transaction.atomic():
                locked = access_conversation_by_id(manager, conversation.pk, for_update=True)
                update_conversation(locked, changes={"status": Conversation.Status.PENDING})
                first_wrote.set()
                commit_first.wait(10)
        except Exception as exc:  # shown by the main thread
            errors.append(exc)
        finally:
            close_old_connections()

    def mark_read_meanwhile():
        try:
            client = APIClient()
            client.force_authenticate(manager)
            response = client.post(f"/api/v1/conversations/{conversation.pk}/read/")
            assert response.status_code == 200, response.content
        except Exception as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    first = threading.Thread(target=resolve_and_hold)
    first.start()
    assert first_wrote.wait(10)
    second = threading.Thread(target=mark_read_meanwhile)
    second.start()
    _wait_for_a_lock_waiter()  # the read is in flight, behind the uncommitted status change
    commit_first.set()
    first.join(10)
    second.join(10)
    assert not errors, errors

    earlier, later = _payloads("conversation.updated", conversation.pk)
    assert (earlier["status"], earlier["unread_count"]) == ("pending", 3)
    # The later event is the row as both transactions left it, not the copy read before.
    assert (later["status"], later["unread_count"]) == ("pending", 0)
    assert later["version"] > earlier["version"]
    fresh = Conversation.objects.select_related("contact", "channel", "assignee").get(
        pk=conversation.pk
    )
    # (`labels` rides along where the change path loaded them: absent means "unchanged")
    assert conversation_payload(fresh) == {k: v for k, v in later.items() if k != "labels"}


@pytest.mark.django_db
def test_every_write_path_bumps_the_version(manager, channel, django_capture_on_commit_callbacks):
    """Ingest (batch SQL), status changes, retries, edits: each event's version is higher
    than the one before it for the same row, and equals the row's."""
    sender = InboundSender(external_id="cust-v", name="Customer")
    with django_capture_on_commit_callbacks(execute=True):
        first = ingest_message(
            channel, InboundMessage(sender=sender, content="one", external_id="e1")
        )
        ingest_message(channel, InboundMessage(sender=sender, content="two", external_id="e2"))
    conversation_id = first.message.conversation_id
    versions = [p["version"] for p in _payloads("conversation.created", conversation_id)] + [
        p["version"] for p in _payloads("conversation.updated", conversation_id)
    ]
    assert versions == sorted(set(versions)) and len(versions) == 2
    assert Conversation.objects.get(pk=conversation_id).version == versions[-1]

    message = first.message
    assert message_payload(message)["version"] == 1
    apply_edit(channel_id=channel.pk, external_id="e1", content="one, edited")
    outbound = factories.MessageFactory(
        conversation=message.conversation, direction="out", status="pending"
    )
    update_message_status(outbound.pk, Message.Status.FAILED, reason="refused")
    retry_failed_message(Message.objects.get(pk=outbound.pk))
    update_message_status(outbound.pk, Message.Status.SENT)

    edited = _payloads("message.updated", conversation_id)
    by_message: dict[int, list[int]] = {}
    for payload in edited:
        by_message.setdefault(payload["id"], []).append(payload["version"])
    assert by_message[message.pk] == [2]
    assert by_message[outbound.pk] == [2, 3, 4]
    assert Message.objects.get(pk=outbound.pk).version == 4


@pytest.mark.django_db
def test_the_admins_bulk_update_bumps_every_version(channel):
    from communications.services.conversations import bulk_update_conversations

    conversations = [factories.ConversationFactory(channel=channel) for _ in range(2)]
    bulk_update_conversations([c.pk for c in conversations], status="resolved")
    payloads = RealtimeEvent.objects.filter(type="conversation.updated").values_list(
        "payload", flat=True
    )
    assert sorted((p["id"], p["version"], p["status"]) for p in payloads) == [
        (c.pk, 2, "resolved") for c in conversations
    ]
