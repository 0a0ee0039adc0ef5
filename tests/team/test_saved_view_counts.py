"""Saved views' live counts (issue 14 item 8): a change that moves what views filter on carries
the conversation's state before and after (`views` beside `counts`), and a page works out per
view whether it entered or left (static/inbox/views.js `matches`; `matches` below is the same
rule). The strongest check: a page's view counts moved by every event equal a fresh count,
per manager ("me" differs). And what it costs per event, in queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from communications import consumers
from communications.access import access_conversation_by_id
from communications.counts import CountState, views_move
from communications.models import Conversation, RealtimeEvent
from communications.pages import inbox_counts
from communications.saved_views import services as saved_views
from communications.services.conversations import (
    bulk_update_conversations,
    mark_read,
    record_conversation_updated,
    update_conversation,
)
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from communications.services.labels import change_conversation_labels, label_create
from communications.services.send import send_message

pytestmark = pytest.mark.django_db


def matches(filters: dict, state: dict | None, user_id: int) -> bool:
    """static/inbox/views.js `matches`: the list's filter rules on an event's state."""
    if state is None:
        return False
    for key, value in filters.items():
        if key == "status" and state["status"] != value:
            return False
        if key == "channel" and state["channel"] != value:
            return False
        if key in ("assignee", "team"):
            wanted = user_id if value == "me" else None if value == "none" else value
            if state[key] != wanted:
                return False
        if key == "unread" and value and not state["unread"]:
            return False
        if key == "label" and value not in state["labels"]:
            return False
    return True


def moved(counts: dict, views: list, user_id: int, since_event: int) -> dict:
    result = dict(counts)
    for move in (
        RealtimeEvent.objects.filter(id__gt=since_event, views__isnull=False)
        .order_by("id")
        .values_list("views", flat=True)
    ):
        for view in views:
            key = str(view.pk)
            result[key] += matches(view.filters, move["now"], user_id)
            result[key] -= matches(view.filters, move["was"], user_id)
    return result


def inbound(sender: str, text: str = "Hello") -> InboundMessage:
    return InboundMessage(sender=InboundSender(external_id=sender, name=sender), content=text)


def locked(user, conversation_id):
    return access_conversation_by_id(user, conversation_id, for_update=True)


def test_view_counts_moved_by_the_events_equal_a_fresh_count(teams):
    shop, support = teams["shop"], teams["support"]
    alice, carol = teams["alice"], teams["carol"]
    vip, _ = label_create(name="VIP")
    make = saved_views.create_view
    views = [
        make(
            alice,
            name="Open mine",
            filters={"status": "open", "assignee": "me"},
            team_id=support.pk,
        ),
        make(alice, name="VIP open", filters={"status": "open", "label": vip.pk}),
        make(
            alice, name="Unread", filters={"unread": True, "channel": shop.pk}, team_id=support.pk
        ),
        make(alice, name="Support team", filters={"team": support.pk}),
        make(alice, name="Unassigned", filters={"assignee": "none"}),
        make(alice, name="Everything", filters={}),
    ]
    ingest_message(shop, inbound("early"))
    before = {user: inbox_counts(user) for user in (alice, carol)}

    def check():  # after every change, for both managers
        for user in (alice, carol):
            mine = list(saved_views.views_for(user))
            fresh = inbox_counts(user)["views"]
            assert moved(before[user]["views"], mine, user.pk, before[user]["as_of"]) == fresh

    dana = ingest_message(shop, inbound("dana")).message.conversation
    eve = ingest_message(shop, inbound("eve")).message.conversation
    check()
    change_conversation_labels(locked(alice, dana.pk), add=[vip])  # enters "VIP open"
    check()
    update_conversation(locked(alice, dana.pk), changes={"assignee_id": alice.pk})
    update_conversation(locked(alice, eve.pk), changes={"team_id": support.pk})
    update_conversation(locked(alice, eve.pk), changes={"assignee_id": carol.pk})
    check()
    mark_read(locked(alice, eve.pk))  # leaves "Unread"
    update_conversation(locked(alice, dana.pk), changes={"status": "resolved"})  # leaves VIP open
    check()
    ingest_message(shop, inbound("dana", "one more thing"))  # reopens: back in, unread again
    check()
    update_conversation(
        locked(alice, eve.pk),
        changes={"status": "snoozed", "snoozed_until": timezone.now() + timedelta(days=1)},
    )
    send_message(
        conversation=Conversation.objects.get(pk=dana.pk),
        user=alice,
        client_id="reply-1",
        content="On it",
    )  # a reply reads the thread: leaves "Unread"
    check()
    change_conversation_labels(locked(alice, dana.pk), remove=[vip])  # leaves "VIP open"
    check()
    early = Conversation.objects.get(external_id="early")
    bulk_update_conversations([early.pk, eve.pk], is_archived=True)  # out of every view
    check()
    # the numbers themselves: carol sees the team's views only, "me" is her
    assert inbox_counts(alice)["views"] == {
        str(views[0].pk): 1,  # dana, alice's and open again
        str(views[1].pk): 0,
        str(views[2].pk): 0,
        str(views[3].pk): 0,  # eve had the team, and is archived
        str(views[4].pk): 1,  # the fixture's conversation
        str(views[5].pk): 2,
    }
    assert inbox_counts(carol)["views"] == {str(views[0].pk): 0, str(views[2].pk): 0}


def test_an_event_carries_the_state_a_view_left():
    vip_open = {"status": "open", "label": 5}
    was = CountState("open", False, 7, True, channel_id=2, team_id=None, label_ids=(5,))
    now = CountState("resolved", False, 7, True, channel_id=2, team_id=None, label_ids=(5,))
    move = views_move(was, now)
    assert move == {
        "was": {
            "status": "open",
            "channel": 2,
            "assignee": 7,
            "team": None,
            "unread": True,
            "labels": [5],
        },
        "now": {
            "status": "resolved",
            "channel": 2,
            "assignee": 7,
            "team": None,
            "unread": True,
            "labels": [5],
        },
    }
    assert matches(vip_open, move["was"], 7) and not matches(vip_open, move["now"], 7)  # -1
    assert views_move(was, was) is None  # nothing a view reads changed: nothing sent
    # archived: in no view, as in the list
    assert views_move(was, CountState("open", True, 7, True, 2, None, (5,)))["now"] is None
    # a label change knows both sides
    unlabelled = CountState("open", False, 7, True, channel_id=2, label_ids=())
    move = views_move(unlabelled, was)
    assert move["was"]["labels"] == [] and move["now"]["labels"] == [5]
    # labels known on one side only are the other side's (only label changes change them)
    unknown = CountState("open", False, None, True, channel_id=2, label_ids=None)
    assert views_move(unknown, was)["was"]["labels"] == [5]


def test_a_status_change_costs_no_query_for_the_views(teams, count_queries):
    """The writers read the label ids with the locked row: a change that moves views costs the
    same statements as before views existed (tests/spine/test_live_counts.py)."""
    vip, _ = label_create(name="VIP")
    conversation = ingest_message(teams["shop"], inbound("dana")).message.conversation
    change_conversation_labels(locked(teams["alice"], conversation.pk), add=[vip])
    row = locked(teams["alice"], conversation.pk)
    with count_queries() as queries:
        update_conversation(row, changes={"status": "resolved"})
    assert queries.count == 5, queries.explain()  # savepoint, UPDATE, activity, events, release
    event = RealtimeEvent.objects.filter(type="conversation.updated").latest("id")
    assert event.views["was"]["labels"] == [vip.pk] and event.views["now"]["status"] == "resolved"
    replayed, _ = consumers._missed_events([teams["shop"].pk], event.pk - 1)
    replayed = {e["id"]: e for e in replayed}
    assert replayed[event.pk]["views"] == event.views  # a reconnecting page gets it too


def test_a_writer_without_the_label_ids_pays_one_indexed_query_only_when_views_move(
    teams, count_queries
):
    vip, _ = label_create(name="VIP")
    conversation = ingest_message(teams["shop"], inbound("dana")).message.conversation
    change_conversation_labels(locked(teams["alice"], conversation.pk), add=[vip])
    plain = Conversation.objects.select_related("contact", "channel", "assignee").get(
        pk=conversation.pk
    )  # no label ids read with it
    from communications.counts import state_of

    before = state_of(plain)
    with count_queries() as queries:
        record_conversation_updated(plain, before=before)  # nothing changed
    assert queries.count == 1, queries.explain()  # the events' INSERT only
    assert RealtimeEvent.objects.latest("id").views is None
    plain.status = "resolved"
    with count_queries() as queries:
        record_conversation_updated(plain, before=before)
    assert queries.count == 2, queries.explain()  # + the conversation's label links
    assert RealtimeEvent.objects.latest("id").views["now"]["labels"] == [vip.pk]


def test_a_message_that_changes_no_view_state_carries_none(teams, count_queries):
    ingest_message(teams["shop"], inbound("dana"))
    with count_queries() as queries:
        ingest_message(teams["shop"], inbound("dana", "are you there?"))  # already unread
    event = RealtimeEvent.objects.filter(type="conversation.updated").latest("id")
    assert event.views is None and event.counts is None
    assert queries.count == 8, queries.explain()  # as tests/spine/test_live_counts.py
