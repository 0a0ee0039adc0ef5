"""Outgoing webhooks: a pytest-httpserver receiver stands in for the integrator."""

import pytest

from communications.models import OutgoingWebhookSubscription
from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
from tests import factories

SECRET = "whsec_test-secret"


@pytest.fixture
def channel(db):
    return factories.ChannelFactory()


@pytest.fixture
def subscribe(httpserver):
    def make(events=("message.created",), path="/hook", **fields):
        return OutgoingWebhookSubscription.objects.create(
            name="CRM sync",
            url=httpserver.url_for(path),
            events=list(events),
            secrets={"signing_secret": SECRET},
            **fields,
        )

    return make


def inbound(text: str, sender: str = "cust-1", external_id: str | None = None) -> InboundMessage:
    return InboundMessage(
        sender=InboundSender(external_id=sender, name=f"Customer {sender}"),
        content=text,
        external_id=external_id or f"{sender}-{text}",
    )


def customer_writes(channel, *texts, sender="cust-1"):
    """Messages through the one ingest path, committed (the on_commit kick is not run: the test
    drains by hand)."""
    return ingest_messages(channel, [inbound(text, sender) for text in texts])
