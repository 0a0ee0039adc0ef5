"""A WhatsApp Cloud channel that is not set up: managers are told up front in their words,
staff see what is missing on the channel in the admin."""

import pytest
from django.utils import timezone

from communications.models import Channel
from integrations.matrix.models import MatrixSettings
from integrations.matrix.settings_cache import invalidate
from integrations.registry import configuration_problems, reply_unavailable_reason
from tests import factories

pytestmark = pytest.mark.django_db

COMPLETE = {
    "config": {"phone_number_id": "1055", "business_account_id": "1020"},
    "secrets": {"access_token": "EAAB", "app_secret": "s", "verify_token": "v"},
}
NOT_CONNECTED = "this WhatsApp number isn't connected yet — ask an admin"


@pytest.fixture(autouse=True)
def classical_mode(settings):
    settings.WHATSAPP_MODE = "classical"
    invalidate()  # the mode is read through the cache
    yield
    invalidate()


def whatsapp(**fields):
    return factories.ChannelFactory(kind=Channel.Kind.WHATSAPP, name="WA Shop", **fields)


def test_a_channel_without_phone_number_id_says_so_before_anyone_types(api, manager):
    channel = whatsapp(secrets=COMPLETE["secrets"])
    channel.teams.add(manager.teams.get())
    conversation = factories.ConversationFactory(channel=channel, last_inbound_at=timezone.now())
    body = api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert (body["reply_unavailable"], body["reply_mode"]) == (NOT_CONNECTED, "notes")
    assert "config" not in body["reply_unavailable"]

    channel.config = COMPLETE["config"]
    channel.save()
    body = api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert (body["reply_unavailable"], body["reply_mode"]) == ("", "text")


def test_a_channel_without_business_account_id_is_listed_but_still_replies():
    channel = whatsapp(config={"phone_number_id": "1055"}, secrets=COMPLETE["secrets"])
    assert reply_unavailable_reason(channel) == ""
    [problem] = configuration_problems(channel)
    assert problem.text.startswith("WhatsApp Business Account ID is not set")
    assert not problem.blocks_replies


def test_missing_webhook_secrets_do_not_stop_replies_but_are_listed():
    channel = whatsapp(config=COMPLETE["config"], secrets={"access_token": "EAAB"})
    assert reply_unavailable_reason(channel) == ""
    assert [(p.text, p.blocks_replies) for p in configuration_problems(channel)] == [
        ("App secret is not set: Meta's webhooks are refused", False),
        ("Webhook verify token is not set: Meta cannot subscribe", False),
    ]
    assert configuration_problems(whatsapp(**COMPLETE)) == []


def test_in_the_matrix_mode_cloud_settings_are_not_needed():
    MatrixSettings(whatsapp_mode="matrix").save()
    channel = whatsapp()
    assert configuration_problems(channel) == []
    # Matrix speaks for itself: a channel that is no connected number is read-only (issue 10).
    assert reply_unavailable_reason(channel) == "this WhatsApp channel has no connected number"


def test_the_admin_shows_the_problem_on_the_channel(client):
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    broken = whatsapp(secrets={"app_secret": "s", "verify_token": "v"})
    fine = whatsapp(**COMPLETE)
    listing = client.get("/admin/communications/channel/").content.decode()
    row = listing[listing.index(f"/admin/communications/channel/{broken.pk}/change/") :]
    assert (
        "Phone number ID is not set: nothing can be sent; "
        "Access token is not set: nothing can be sent" in row[: row.index("</tr>")]
    )
    row = listing[listing.index(f"/admin/communications/channel/{fine.pk}/change/") :]
    assert '<td class="field-configuration">OK</td>' in row[: row.index("</tr>")]

    page = client.get(f"/admin/communications/channel/{broken.pk}/change/").content.decode()
    assert '<li class="error">Phone number ID is not set: nothing can be sent</li>' in page
    assert '<li class="error">Access token is not set: nothing can be sent</li>' in page
    page = client.get(f"/admin/communications/channel/{fine.pk}/change/").content.decode()
    assert "is not set" not in page
