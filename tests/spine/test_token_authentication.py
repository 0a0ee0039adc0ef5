"""API tokens (communications/api/authentication.py): one statement reads the token, its user
and the channels the user may see; the refusals are DRF's words with status 401."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communications.access import visible_channel_ids
from communications.api.authentication import TokenAuthentication
from communications.services.ingest import InboundMessage, InboundSender, ingest_message
from tests import factories

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_token_reads_its_user_and_their_channels_in_one_query(
    manager, channel, django_assert_num_queries
):
    other_team_channel = factories.ChannelFactory()
    other_team = factories.TeamFactory()
    other_team.members.add(factories.UserFactory())
    other_team_channel.teams.add(other_team)
    second = factories.ChannelFactory()
    second.teams.add(manager.teams.first())
    key = Token.objects.create(user=manager).key
    with django_assert_num_queries(1):
        user, token = TokenAuthentication().authenticate_credentials(key)
        channels = visible_channel_ids(user)
    assert user == manager and token.key == key and token.user is user
    assert sorted(channels) == sorted([channel.pk, second.pk])
    assert other_team_channel.pk not in channels


def test_a_superusers_token_sees_every_channel(channel):
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    user, _ = TokenAuthentication().authenticate_credentials(Token.objects.create(user=admin).key)
    assert visible_channel_ids(user) is None


def test_a_user_in_no_team_sees_no_channel(channel):
    others = factories.TeamFactory()  # other people's team
    others.members.add(factories.UserFactory())
    channel.teams.add(others)
    loner = factories.UserFactory()
    user, _ = TokenAuthentication().authenticate_credentials(Token.objects.create(user=loner).key)
    assert visible_channel_ids(user) == []


def test_the_api_lists_only_the_tokens_users_conversations(manager, channel):
    mine = ingest_message(
        channel, InboundMessage(sender=InboundSender(external_id="a"), content="mine")
    )
    ingest_message(
        factories.ChannelFactory(),
        InboundMessage(sender=InboundSender(external_id="b"), content="not mine"),
    )
    response = client_with(Token.objects.create(user=manager).key).get("/api/v1/conversations/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.message.conversation_id]


@pytest.mark.parametrize(
    "key", ["no-such-token", "x" * 200, "with\x00nul", "';DROP_TABLE_authtoken_token;--"]
)
def test_a_wrong_token_is_401_invalid_token(manager, key):
    Token.objects.create(user=manager)
    response = client_with(key).get("/api/v1/conversations/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert Token.objects.count() == 1


def test_a_deactivated_users_token_is_401(manager):
    key = Token.objects.create(user=manager).key
    manager.is_active = False
    manager.save(update_fields=["is_active"])
    response = client_with(key).get("/api/v1/conversations/")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."
