"""The batch INSERT/UPDATE of the hot write paths: rows land exactly as given, in order."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from communications.models import ContactIdentity, Conversation, Message, RealtimeEvent
from crm.bulk_sql import delete_rows, insert_new_rows, insert_rows, update_rows
from crm.models import Contact
from tests import factories

pytestmark = pytest.mark.django_db

AWKWARD_TEXTS = [
    "quotes \" and ' and {braces} and [brackets]",
    "backslash \\ and \\\\ and a \\u0041 that is not an escape",
    "new\nlines\tand\r\ncarriage returns",
    "emoji 🙏🏽 and ünïcödé and 中文 and RTL مرحبا",
    "",
    "%s %(name)s %% placeholders",
]


def test_insert_rows_sets_primary_keys_in_order_and_stores_values_exactly(channel):
    conversation = factories.ConversationFactory(channel=channel)
    moment = timezone.now() - timedelta(days=3, microseconds=7)
    messages = [
        Message(
            conversation=conversation,
            channel=channel,
            direction=Message.Direction.INBOUND,
            content=text,
            status=Message.Status.RECEIVED,
            external_id=f"ext-{index}" if index % 2 else None,
            metadata={"n": index, "nested": {"text": text, "list": [1, None, True]}},
            created_at=moment + timedelta(seconds=index),
        )
        for index, text in enumerate(AWKWARD_TEXTS)
    ]
    insert_rows(messages)

    assert all(m.pk for m in messages)
    assert [m.pk for m in messages] == sorted(m.pk for m in messages)
    for message in messages:
        stored = Message.objects.get(pk=message.pk)
        assert stored.content == message.content
        assert stored.external_id == message.external_id
        assert stored.metadata == message.metadata
        assert stored.created_at == message.created_at
        assert stored.updated_at is not None  # auto_now applied, as bulk_create does
        assert not message._state.adding


def test_insert_rows_applies_auto_now_add(channel):
    events = [
        RealtimeEvent(type="t", channel_id=channel.pk, conversation_id=None, payload={"a": 1}),
        RealtimeEvent(type="t", channel_id=None, conversation_id=7, payload=[1, "two"]),
    ]
    before = timezone.now()
    insert_rows(events)
    stored = list(RealtimeEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("pk"))
    assert [e.payload for e in stored] == [{"a": 1}, [1, "two"]]
    assert [e.channel_id for e in stored] == [channel.pk, None]
    assert all(e.created_at >= before for e in stored)


def test_a_unique_violation_is_djangos_integrity_error_and_stores_nothing(channel):
    conversation = factories.ConversationFactory(channel=channel)

    def message(external_id):
        return Message(
            conversation=conversation,
            channel=channel,
            direction=Message.Direction.INBOUND,
            status=Message.Status.RECEIVED,
            external_id=external_id,
            created_at=timezone.now(),
        )

    insert_rows([message("taken")])
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows([message("fresh"), message("taken")])
    assert list(Message.objects.values_list("external_id", flat=True)) == ["taken"]


def test_insert_new_rows_skips_what_a_unique_constraint_holds_and_returns_the_rest(channel):
    taken = factories.ConversationFactory(channel=channel, external_id="taken")
    contact = taken.contact
    candidates = [
        Conversation(channel=channel, contact=contact, external_id=external_id, subject=text)
        for external_id, text in [("fresh-1", AWKWARD_TEXTS[0]), ("taken", "x"), ("fresh-2", "")]
    ]
    inserted = insert_new_rows(candidates, ("channel", "external_id"))

    assert [c.external_id for c in inserted] == ["fresh-1", "fresh-2"]
    assert all(c.pk and not c._state.adding for c in inserted)
    assert candidates[1].pk is None  # skipped: the stored row is untouched
    assert Conversation.objects.get(pk=taken.pk).subject == taken.subject
    stored = Conversation.objects.get(pk=inserted[0].pk)
    assert (stored.external_id, stored.subject) == ("fresh-1", AWKWARD_TEXTS[0])
    assert Conversation.objects.count() == 3


def test_delete_rows_deletes_exactly_the_named_rows(channel):
    contacts = [Contact(name=f"c{n}") for n in range(3)]
    insert_rows(contacts)
    delete_rows(Contact, [contacts[0].pk, contacts[2].pk])
    delete_rows(Contact, [])
    assert list(Contact.objects.values_list("name", flat=True)) == ["c1"]
    assert ContactIdentity.objects.count() == 0


def test_update_rows_writes_only_the_named_fields(channel):
    first, second = factories.ConversationFactory.create_batch(2, channel=channel)
    Conversation.objects.filter(pk=second.pk).update(subject="changed elsewhere")
    first.unread_count, second.unread_count = 3, 5
    first.last_message_preview = AWKWARD_TEXTS[0]
    second.subject = "stale value that must not be written"
    update_rows([first, second], ["unread_count", "last_message_preview"])

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.unread_count, first.last_message_preview) == (3, AWKWARD_TEXTS[0])
    assert (second.unread_count, second.subject) == (5, "changed elsewhere")


def test_empty_batches_cost_nothing(count_queries):
    with count_queries() as queries:
        insert_rows([])
        assert insert_new_rows([], ("id",)) == []
        update_rows([], ["status"])
    assert queries.count == 0
