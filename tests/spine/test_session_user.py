"""The session's user (crm.auth.PoolFriendlyModelBackend.get_user): the user row and the
channels they may see in one statement on PostgreSQL (communications/user_rows.py)."""

import pytest
from django.db import connection
from django.test import Client

from communications.access import visible_channel_ids
from crm.auth import PoolFriendlyModelBackend
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_session_user_comes_with_their_channels_in_one_query(
    manager, channel, django_assert_num_queries
):
    second = factories.ChannelFactory()
    second.teams.add(manager.teams.first())
    other_team = factories.TeamFactory()
    other_team.members.add(factories.UserFactory())
    factories.ChannelFactory().teams.add(other_team)  # another team's
    queries = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(queries):
        user = PoolFriendlyModelBackend().get_user(manager.pk)
        channels = visible_channel_ids(user)
    assert user == manager
    assert sorted(channels) == sorted([channel.pk, second.pk])


def test_a_superuser_sees_every_channel(channel):
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    assert visible_channel_ids(PoolFriendlyModelBackend().get_user(admin.pk)) is None


@pytest.mark.parametrize("user_id", [987654, "not-a-number", None, 2**31, 2**70, -(2**70), "1e3"])
def test_no_such_user_is_nobody(user_id):
    assert PoolFriendlyModelBackend().get_user(user_id) is None


def test_the_backend_gives_no_deactivated_user(manager):
    manager.is_active = False
    manager.save(update_fields=["is_active"])
    assert PoolFriendlyModelBackend().get_user(manager.pk) is None


def test_a_deactivated_users_session_signs_nobody_in(manager):
    browser = Client()
    browser.force_login(manager)
    assert browser.get("/api/v1/conversations/").status_code == 200
    manager.is_active = False
    manager.save(update_fields=["is_active"])
    assert browser.get("/api/v1/conversations/").status_code == 401
