"""Two teams on two channels: Support (alice, carol) on `shop`, Sales (bob) on `other`."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories


def api_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def teams(db):
    shop, other = factories.ChannelFactory(name="Shop"), factories.ChannelFactory(name="Other")
    support, sales = factories.TeamFactory(name="Support"), factories.TeamFactory(name="Sales")
    shop.teams.add(support)
    other.teams.add(sales)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    bob = factories.UserFactory(username="bob", first_name="Bob", last_name="Stone")
    support.members.add(alice, carol)
    sales.members.add(bob)
    conversation = factories.ConversationFactory(channel=shop)
    foreign = factories.ConversationFactory(channel=other)
    return {
        "shop": shop,
        "other": other,
        "support": support,
        "sales": sales,
        "alice": alice,
        "carol": carol,
        "bob": bob,
        "conversation": conversation,
        "foreign": foreign,
    }
