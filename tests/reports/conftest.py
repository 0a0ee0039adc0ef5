"""A hand-built dataset whose report numbers are computed by hand in the tests.

TIME_ZONE is Europe/Berlin (UTC+1 in January), so some UTC moments land on the next local
day: 2026-01-05 is a Monday, D1 = Jan 5 and D2 = Jan 6 (local days).

  c1  channel A / team T1, alice   in 08:00Z (09:00 Mon); a note by bob 08:01 (not a reply);
                                   alice 08:02 → 120 s on D1; resolved by alice 10:00Z → 7200 s
  c2  channel A / T1, bob          in 22:30Z (23:30 Mon, D1); an away reply 22:31 (no person);
                                   bob 23:30Z = 00:30 Tue → 3600 s on D2;
                                   resolved by bob Jan 6 01:30Z → 10800 s on D2
  c3  channel B / T2, alice        opened 23:10Z Jan 5 = 00:10 Tue (D2); alice's reply 23:11
                                   failed; alice 23:20Z → 600 s on D2; resolved by alice Jan 6
                                   09:10Z → 36000 s; the customer wrote again 11:00Z (12:00),
                                   resolved again 12:00Z (counted, no second resolution time)
  c4  channel B / T2, unassigned   in Jan 6 10:00Z (11:00); bob 10:05Z → 300 s
  c5  channel A / T1, alice        in Jan 6 11:00Z (12:00); no reply
"""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communications.models import Activity, Conversation, Message
from tests import factories


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


@pytest.fixture
def people(db):
    return {
        "alice": factories.UserFactory(username="alice", first_name="Alice", last_name="Ng"),
        "bob": factories.UserFactory(username="bob", first_name="Bob", last_name=""),
    }


@pytest.fixture
def dataset(berlin, people):
    alice, bob = people["alice"], people["bob"]
    t1, t2 = factories.TeamFactory(name="T1"), factories.TeamFactory(name="T2")
    a = factories.ChannelFactory(name="A")
    b = factories.ChannelFactory(name="B")
    a.teams.add(t1)
    b.teams.add(t2)

    def conversation(channel, team, assignee, opened):
        c = factories.ConversationFactory(channel=channel, team=team, assignee=assignee)
        Conversation.objects.filter(pk=c.pk).update(created_at=opened)
        c.refresh_from_db()
        return c

    def inbound(c, moment):
        factories.MessageFactory(conversation=c, created_at=moment)

    def reply(c, moment, user, **extra):
        factories.MessageFactory(
            conversation=c,
            direction=Message.Direction.OUTBOUND,
            status=extra.pop("status", Message.Status.SENT),
            sender_user=user,
            created_at=moment,
            **extra,
        )

    def resolve(c, moment, user):
        Activity.objects.create(
            conversation=c,
            actor=user,
            verb=Activity.Verb.STATUS,
            before={"status": "open"},
            after={"status": "resolved"},
            subject_id=c.pk,
            created_at=moment,
        )

    c1 = conversation(a, t1, alice, at(5, 8))
    inbound(c1, at(5, 8))
    reply(c1, at(5, 8, 1), bob, kind=Message.Kind.NOTE)
    reply(c1, at(5, 8, 2), alice)
    resolve(c1, at(5, 10), alice)

    c2 = conversation(a, t1, bob, at(5, 22, 30))
    inbound(c2, at(5, 22, 30))
    reply(c2, at(5, 22, 31), None)
    reply(c2, at(5, 23, 30), bob)
    resolve(c2, at(6, 1, 30), bob)

    c3 = conversation(b, t2, alice, at(5, 23, 10))
    inbound(c3, at(5, 23, 10))
    reply(c3, at(5, 23, 11), alice, status=Message.Status.FAILED)
    reply(c3, at(5, 23, 20), alice)
    resolve(c3, at(6, 9, 10), alice)
    inbound(c3, at(6, 11))
    resolve(c3, at(6, 12), alice)

    c4 = conversation(b, t2, None, at(6, 10))
    inbound(c4, at(6, 10))
    reply(c4, at(6, 10, 5), bob)

    c5 = conversation(a, t1, alice, at(6, 11))
    inbound(c5, at(6, 11))
    return {"A": a, "B": b, "T1": t1, "T2": t2, "c3": c3, **people}


@pytest.fixture
def lead(db):
    """A team lead: not staff, holding reports.view_reports through a group."""
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="Team leads")
    group.permissions.add(Permission.objects.get(codename="view_reports"))
    user = factories.UserFactory(username="lead")
    group.user_set.add(user)
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client
