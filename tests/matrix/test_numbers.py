"""numbers.py without a homeserver: one channel per number, however many ask at once."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connections

from communications.models import Channel
from integrations.matrix.models import MatrixConnection, MatrixRoom, WhatsAppNumber
from integrations.matrix.numbers import number_channel, pretty_phone, room_channel
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def connection_of(user, phone="15557654321"):
    return MatrixConnection.objects.create(
        user=user, matrix_user_id=f"@switchboard_{user.pk}:hs", phone=phone, state="connected"
    )


def test_twenty_first_events_at_once_make_one_channel(django_capture_on_commit_callbacks):
    user = factories.UserFactory(username="ann")
    factories.TeamFactory(name="ann's team").members.add(user)
    connection = connection_of(user)
    barrier = Barrier(20)

    def first_event(_):
        barrier.wait()
        try:
            return number_channel(connection, "15557654321").pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(20) as pool:
        ids = set(pool.map(first_event, range(20)))
    assert len(ids) == 1
    assert WhatsAppNumber.objects.count() == Channel.objects.count() == 1
    channel = Channel.objects.get()
    assert [t.name for t in channel.teams.all()] == ["ann's team"]


def test_a_manager_in_no_team_gets_one_so_the_chats_are_visible():
    user = factories.UserFactory(username="loner")
    channel = number_channel(connection_of(user), "15557654321")
    assert [t.name for t in channel.teams.all()] == ["WhatsApp of loner"]
    assert list(user.teams.all()) == list(channel.teams.all())


def test_each_number_of_a_manager_is_its_own_channel_and_rooms_follow_their_receiver():
    user = factories.UserFactory(username="ann")
    connection = connection_of(user, phone="15550000002")
    old = MatrixRoom.objects.create(
        room_id="!old", connection=connection, kind="portal", receiver="15557654321"
    )
    new = MatrixRoom.objects.create(room_id="!new", connection=connection, kind="portal")
    assert room_channel(old).address == "+1 555 765 4321"
    assert room_channel(new).address == "+1 555 000 0002"  # no receiver: the login's number
    assert MatrixRoom.objects.get(room_id="!old").channel_id == room_channel(old).pk


def test_pretty_phone():
    assert pretty_phone("15557654321") == "+1 555 765 4321"
    assert pretty_phone("4915112345678") == "+49 1511 2345678"
    assert pretty_phone("") == ""
