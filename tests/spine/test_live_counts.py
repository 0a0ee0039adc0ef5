"""The inbox's counts move with the events that change them (issue 16, item 2).

Every conversation event carries how it moved the counts, worked out once by the service that
made the change: no count query per event, none per socket. The strongest check: the counts a
page had, moved by every event's delta, equal a fresh count — for each manager (Mine differs).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from communications import consumers
from communications.access import access_conversation_by_id
from communications.counts import CountState, counts_delta
from communications.models import Conversation, RealtimeEvent
from communications.pages import inbox_counts
from communications.services.conversations import (
    bulk_update_conversations,
    mark_read,
    update_conversation,
)
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from communications.services.send import send_message
from tests import factories

pytestmark = pytest.mark.django_db


def inbound(sender: str, text: str = "Hello") -> InboundMessage:
    return InboundMessage(sender=InboundSender(external_id=sender, name=sender), content=text)


def moved(counts: dict, user_id: int, since_event: int) -> dict:
    """`counts` moved by the deltas of every event after `since_event`, as the page does."""
    result = dict(counts)
    for delta in (
        RealtimeEvent.objects.filter(id__gt=since_event, counts__isnull=False)
        .order_by("id")
        .values_list("counts", flat=True)
    ):
        for name, step in delta.items():
            if name == "mine":
                result["mine"] += step.get(str(user_id), 0)
            else:
                result[name] += step
    return result


def fresh(user) -> dict:
    counted = inbox_counts(user)
    del counted["as_of"]
    return counted


def test_deltas_applied_to_the_old_counts_equal_a_fresh_count(channel, manager):
    colleague = factories.UserFactory(username="colleague")
    channel.teams.first().members.add(colleague)
    ingest_message(channel, inbound("early"))  # there before the page was opened
    before = {user: inbox_counts(user) for user in (manager, colleague)}

    def change(conversation_id, **changes):
        conversation = access_conversation_by_id(manager, conversation_id, for_update=True)
        return update_conversation(conversation, changes=changes)

    dana = ingest_message(channel, inbound("dana")).message.conversation  # new: all, open, unread
    ingest_message(channel, inbound("dana", "again"))  # unread stays 1 conversation
    eve = ingest_message(channel, inbound("eve")).message.conversation
    change(dana.pk, assignee_id=manager.pk)  # unassigned → mine
    change(eve.pk, assignee_id=colleague.pk)
    change(dana.pk, status="resolved")  # leaves open and mine
    ingest_message(channel, inbound("dana", "one more thing"))  # reopens it: back to mine
    change(eve.pk, status="snoozed", snoozed_until=timezone.now() + timedelta(days=1))
    mark_read(access_conversation_by_id(manager, dana.pk, for_update=True))
    send_message(
        conversation=Conversation.objects.get(pk=eve.pk),
        user=colleague,
        client_id="reply-1",
        content="We are on it",
    )  # a reply reads the thread
    change(eve.pk, status="pending")
    change(dana.pk, assignee_id=colleague.pk)  # mine moves from one manager to the other
    early = Conversation.objects.get(external_id="early")
    bulk_update_conversations([early.pk, eve.pk], is_archived=True)  # out of every count

    for user in (manager, colleague):
        now = fresh(user)
        assert moved(before[user], user.pk, before[user]["as_of"]) == now | {
            "as_of": before[user]["as_of"]
        }
    assert fresh(manager)["all"] == 1 and fresh(colleague)["mine"] == 1


def test_an_event_moves_only_what_changed():
    open_unread = CountState("open", False, None, True)
    assert counts_delta(None, open_unread) == {"all": 1, "open": 1, "unassigned": 1, "unread": 1}
    assert counts_delta(open_unread, open_unread) is None
    assert counts_delta(open_unread, CountState("open", False, 7, True)) == {
        "unassigned": -1,
        "mine": {"7": 1},
    }
    assert counts_delta(
        CountState("open", False, 7, False), CountState("resolved", False, 7, False)
    ) == {
        "open": -1,
        "resolved": 1,
        "mine": {"7": -1},
    }


def counts_of_conversations(queries) -> list:
    """COUNTs over conversations (the outbox's count of the rows it wrote is not one)."""
    return [
        q
        for q in queries.context.captured_queries
        if "COUNT(" in q["sql"].upper() and 'FROM "COMMUNICATIONS_CONVERSATION"' in q["sql"].upper()
    ]


def test_ingest_sends_deltas_without_a_count_query(channel, count_queries):
    ingest_message(channel, inbound("dana"))
    mark_read(Conversation.objects.select_related("contact", "channel").get())
    with count_queries() as queries:
        ingest_message(channel, inbound("dana", "are you there?"))
    # The same statements as without counts (tests/spine/test_ingest.py): the delta comes from
    # the row locked for the update, never from a COUNT.
    assert queries.count == 8, queries.explain()
    assert not counts_of_conversations(queries)
    event = RealtimeEvent.objects.filter(type="conversation.updated").latest("id")
    assert event.counts == {"unread": 1}
    assert RealtimeEvent.objects.filter(type="message.created").latest("id").counts is None


def test_status_change_costs_no_extra_query_and_carries_its_delta(channel, manager, count_queries):
    conversation = ingest_message(channel, inbound("dana")).message.conversation
    locked = access_conversation_by_id(manager, conversation.pk, for_update=True)
    with count_queries() as queries:
        update_conversation(locked, changes={"status": "resolved"})
    # savepoint, the UPDATE, the activity line, the events INSERT, release: no count query
    assert queries.count == 5, queries.explain()
    assert not counts_of_conversations(queries)
    event = RealtimeEvent.objects.filter(type="conversation.updated").latest("id")
    assert event.counts == {"open": -1, "resolved": 1, "unassigned": -1}


def test_replayed_events_carry_their_deltas(channel):
    ingest_message(channel, inbound("dana"))
    missed, _ = consumers._missed_events([channel.pk], 0)
    assert [e["type"] for e in missed] == ["conversation.created", "message.created"]
    assert missed[0]["counts"] == {"all": 1, "open": 1, "unassigned": 1, "unread": 1}
    assert "counts" not in missed[1]


def test_counts_say_which_event_they_are_as_of(channel, manager, count_queries):
    ingest_message(channel, inbound("dana"))
    latest = RealtimeEvent.objects.latest("id").pk
    with count_queries() as queries:
        counted = inbox_counts(manager)
    # the saved views (counted in the same aggregate), the visible channels, the aggregate
    assert queries.count == 3, queries.explain()
    assert counted["as_of"] == latest and counted["all"] == 1
