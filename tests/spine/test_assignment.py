"""Auto-assignment in the ingest path, availability, and the bulk API."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from communications.models import Channel, Conversation, ManagerAvailability, RealtimeEvent
from communications.services import assignment
from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
from tests import factories

pytestmark = pytest.mark.django_db


def inbound(sender: str, external_id: str | None = None) -> InboundMessage:
    return InboundMessage(
        sender=InboundSender(external_id=sender, name=sender),
        content="Hi",
        external_id=external_id or f"m-{sender}",
    )


def make_team(channel, *names, cap=None, statuses=None):
    team = factories.TeamFactory(max_open_per_manager=cap)
    channel.teams.add(team)
    users = []
    for name in names:
        user = factories.UserFactory(username=name)
        team.members.add(user)
        status = (statuses or {}).get(name, ManagerAvailability.Status.ONLINE)
        ManagerAvailability.objects.create(user=user, status=status)
        users.append(user)
    return team, users


def assignees(channel) -> list[str | None]:
    return [
        c.assignee.username if c.assignee else None
        for c in Conversation.objects.filter(channel=channel)
        .select_related("assignee")
        .order_by("id")
    ]


def test_off_assigns_nobody_and_costs_no_statement(channel, count_queries):
    make_team(channel, "ann")
    with count_queries() as queries:
        ingest_messages(channel, [inbound("c1")])
    assert assignees(channel) == [None]
    # The unchanged ingest of a new customer (test_ingest's count).
    assert queries.count == 11, queries.explain()


def test_round_robin_takes_turns_among_online_managers_only(channel):
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    team, _ = make_team(
        channel, "ann", "bob", "cid", "dee", statuses={"cid": "busy", "dee": "offline"}
    )
    for n in range(5):
        ingest_messages(channel, [inbound(f"c{n}")])
    assert assignees(channel) == ["ann", "bob", "ann", "bob", "ann"]
    assert set(Conversation.objects.values_list("team_id", flat=True)) == {team.pk}
    team.refresh_from_db()
    assert team.last_auto_assignee.username == "ann"


def test_round_robin_in_one_batch_and_the_event_names_the_assignee(
    channel, django_capture_on_commit_callbacks
):
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    _, (ann, bob) = make_team(channel, "ann", "bob")
    ingest_messages(channel, [inbound(f"c{n}") for n in range(3)])
    assert assignees(channel) == ["ann", "bob", "ann"]
    created = RealtimeEvent.objects.filter(type="conversation.created").order_by("id")
    assert [e.payload["assignee"]["id"] for e in created] == [ann.pk, bob.pk, ann.pk]


def test_caps_team_default_and_own_cap_then_the_rest_wait_unassigned(channel):
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    _, (ann, bob) = make_team(channel, "ann", "bob", cap=2)
    ManagerAvailability.objects.filter(user=bob).update(max_open_conversations=1)
    ingest_messages(channel, [inbound(f"c{n}") for n in range(5)])
    assert assignees(channel) == ["ann", "bob", "ann", None, None]
    # A resolved conversation frees a place.
    Conversation.objects.filter(assignee=ann).update(status="resolved")
    ingest_messages(channel, [inbound("late")])
    assert assignees(channel)[-1] == "ann"


def test_balanced_picks_the_least_loaded(channel):
    channel.auto_assignment = Channel.AutoAssignment.BALANCED
    channel.save()
    _, (ann, bob, cid) = make_team(channel, "ann", "bob", "cid")
    for _ in range(3):
        factories.ConversationFactory(channel=channel, assignee=ann)
    factories.ConversationFactory(channel=channel, assignee=bob)
    ingest_messages(channel, [inbound(f"new{n}") for n in range(3)])
    new = Conversation.objects.filter(external_id__startswith="new").order_by("id")
    assert [c.assignee.username for c in new] == ["cid", "bob", "cid"]


def test_assignment_team_named_on_the_channel_wins(channel):
    make_team(channel, "ann")
    other, _ = make_team(channel, "zed")
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.assignment_team = other
    channel.save()
    ingest_messages(channel, [inbound("c1")])
    assert assignees(channel) == ["zed"]


def test_with_assignment_on_a_new_conversation_costs_five_statements_more(channel, count_queries):
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    make_team(channel, "ann", "bob")
    with count_queries() as queries:
        ingest_messages(channel, [inbound(f"c{n}") for n in range(10)])
    # + team lock, availability locks, open counts, the round robin's position, and the ten
    # conversations' activity lines (the audit of each choice) in one INSERT.
    assert queries.count == 11 + 5, queries.explain()
    with count_queries() as queries:
        ingest_messages(channel, [inbound("c1", "again")])
    assert queries.count == 8, queries.explain()  # existing conversation: nothing more


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["round_robin", "balanced"])
def test_fifty_new_conversations_at_once_stay_within_caps_each_assigned_once(mode):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL")
    channel = factories.ChannelFactory(auto_assignment=mode)
    # Two channels whose teams share a manager: the caps hold across teams too.
    other_channel = factories.ChannelFactory(auto_assignment=mode)
    _, (ann, bob, cid) = make_team(channel, "ann", "bob", "cid", cap=12)
    other_team = factories.TeamFactory(max_open_per_manager=12)
    other_channel.teams.add(other_team)
    other_team.members.add(ann)
    barrier = threading.Barrier(50)
    errors = []

    def worker(n: int):
        try:
            barrier.wait(timeout=30)
            target = other_channel if n % 5 == 0 else channel
            ingest_messages(target, [inbound(f"cust-{n}")])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Conversation.objects.count() == 50
    load = {
        user.username: Conversation.objects.filter(assignee=user).count()
        for user in (ann, bob, cid)
    }
    # 40 on the first channel for 3 managers with 12 each (36 places), 10 on the second for ann.
    assert load == {"ann": 12, "bob": 12, "cid": 12}
    assert Conversation.objects.filter(assignee__isnull=True).count() == 14
    created = RealtimeEvent.objects.filter(type="conversation.created")
    assert created.count() == 50  # each conversation announced (and assigned) once


def test_socket_seen_creates_online_and_beat_sets_offline_then_a_socket_brings_back(
    manager, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "AVAILABILITY_OFFLINE_AFTER_SECONDS": 300}
    assignment.socket_seen(manager.pk, opened=True)
    assert ManagerAvailability.objects.get(user=manager).status == "online"
    assert assignment.mark_absent_managers_offline() == []
    ManagerAvailability.objects.filter(user=manager).update(
        last_socket_at=timezone.now() - timedelta(seconds=301)
    )
    assert assignment.mark_absent_managers_offline() == [manager.pk]
    row = ManagerAvailability.objects.get(user=manager)
    assert (row.status, row.set_automatically) == ("offline", True)
    assignment.socket_seen(manager.pk, opened=True)
    assert ManagerAvailability.objects.get(user=manager).status == "online"


def test_an_offline_chosen_by_the_manager_stays_when_a_socket_opens(manager):
    assignment.set_availability(manager, status="offline")
    assignment.socket_seen(manager.pk, opened=True)
    assert ManagerAvailability.objects.get(user=manager).status == "offline"


@pytest.mark.parametrize("requeue", [True, False])
def test_going_offline_requeues_open_conversations_when_set(
    channel, settings, requeue, django_capture_on_commit_callbacks
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "AVAILABILITY_REQUEUE_ON_OFFLINE": requeue}
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    _, (ann, bob) = make_team(channel, "ann", "bob")
    ingest_messages(channel, [inbound(f"c{n}") for n in range(4)])
    Conversation.objects.filter(external_id="c2").update(status="resolved")
    with django_capture_on_commit_callbacks(execute=True):
        assignment.set_availability(ann, status="offline")
    expected = ["bob", "bob", "ann", "bob"] if requeue else ["ann", "bob", "ann", "bob"]
    assert assignees(channel) == expected


def test_availability_api(api, manager):
    assert api.get("/api/v1/availability/").json()["status"] == "offline"
    answer = api.patch("/api/v1/availability/", {"status": "busy"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["status"] == "busy"
    bad = api.patch("/api/v1/availability/", {"status": "away"}, format="json")
    assert bad.status_code == 400
    assert "status" in bad.json()
    assert ManagerAvailability.objects.get(user=manager).status == "busy"


def test_bulk_assigns_and_resolves_all_or_nothing(api, manager, channel, count_queries):
    mine = [factories.ConversationFactory(channel=channel) for _ in range(3)]
    hidden = factories.ConversationFactory()  # another channel: not visible to the manager
    ids = [c.pk for c in mine]

    answer = api.post(
        "/api/v1/conversations/bulk/",
        {"ids": ids, "assignee_id": manager.pk, "status": "pending"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert [r["assignee"]["id"] for r in answer.json()["results"]] == [manager.pk] * 3
    assert set(Conversation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "pending"
    }

    refused = api.post(
        "/api/v1/conversations/bulk/",
        {"ids": [*ids, hidden.pk], "status": "resolved"},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json() == {"ids": [f"conversation(s) not found: {hidden.pk}"]}
    assert not Conversation.objects.filter(status="resolved").exists()

    stranger = factories.UserFactory(username="stranger")
    refused = api.post(
        "/api/v1/conversations/bulk/", {"ids": ids, "assignee_id": stranger.pk}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["assignee_id"][0].startswith(f"conversation {ids[0]}: assignee_id")

    no_time = api.post(
        "/api/v1/conversations/bulk/", {"ids": ids, "status": "snoozed"}, format="json"
    )
    assert no_time.status_code == 400
    assert "snoozed_until" in no_time.json()
    nothing = api.post("/api/v1/conversations/bulk/", {"ids": ids}, format="json")
    assert nothing.status_code == 400 and "detail" in nothing.json()

    later = (timezone.now() + timedelta(hours=1)).isoformat()
    snoozed = api.post(
        "/api/v1/conversations/bulk/",
        {"ids": ids, "status": "snoozed", "snoozed_until": later},
        format="json",
    )
    assert snoozed.status_code == 200
    assert {r["status"] for r in snoozed.json()["results"]} == {"snoozed"}


def test_demo_data_auto_assigns_the_website_chat_and_keeps_office_hours_on_telegram():
    from django.core.management import call_command

    from communications.business_hours import BusinessHours

    call_command("seed_demo")
    chat = Channel.objects.get(kind=Channel.Kind.API)
    assert chat.auto_assignment == Channel.AutoAssignment.ROUND_ROBIN
    assert dict(ManagerAvailability.objects.values_list("user__username", "status")) == {
        "manager": "online",
        "alex": "online",
    }
    results = ingest_messages(chat, [inbound(f"visitor-{n}") for n in range(2)])
    names = {r.message.conversation.assignee.username for r in results}
    assert names == {"manager", "alex"}
    hours = BusinessHours.of(Channel.objects.get(kind=Channel.Kind.TELEGRAM).business_hours)
    assert hours is not None and hours.away_reply


def test_history_and_the_business_own_first_message_are_not_auto_assigned(channel):
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    make_team(channel, "ann")
    old = timezone.now() - timedelta(days=3)
    ingest_messages(
        channel,
        [
            InboundMessage(
                sender=InboundSender(external_id="h"), content="old", timestamp=old, historical=True
            ),
            InboundMessage(
                sender=InboundSender(external_id="o"), content="hi from us", direction="out"
            ),
        ],
    )
    assert assignees(channel) == [None, None]


def test_staff_setting_a_manager_offline_in_the_admin_requeues(
    channel, client, settings, django_capture_on_commit_callbacks
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "AVAILABILITY_REQUEUE_ON_OFFLINE": True}
    channel.auto_assignment = Channel.AutoAssignment.ROUND_ROBIN
    channel.save()
    _, (ann, bob) = make_team(channel, "ann", "bob")
    ingest_messages(channel, [inbound("c1")])
    assert assignees(channel) == ["ann"]
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            f"/admin/communications/manageravailability/{ann.pk}/change/",
            {"user": ann.pk, "status": "offline", "max_open_conversations": ""},
        )
    assert answer.status_code == 302
    assert assignees(channel) == ["bob"]
    assert ManagerAvailability.objects.get(user=ann).set_automatically is False


def test_bulk_costs_a_fixed_number_of_statements_per_conversation(
    api, manager, channel, count_queries
):
    def statements(n: int) -> int:
        ids = [factories.ConversationFactory(channel=channel).pk for _ in range(n)]
        with count_queries() as queries:
            answer = api.post(
                "/api/v1/conversations/bulk/", {"ids": ids, "status": "resolved"}, format="json"
            )
        assert answer.status_code == 200
        return queries.count

    one, three = statements(1), statements(3)
    # token with the user's channels, savepoint, the locked rows, their labels (the answer
    # carries them), release; per conversation: savepoint, update, event, release.
    assert (one, three) == (5 + 5, 5 + 3 * 5)  # per conversation: … and its activity line
