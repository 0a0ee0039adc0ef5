"""The admin's Messenger / Instagram forms and connection test, and the profile hook (R12)."""

import pytest

from communications.models import Channel, ContactIdentity
from communications.providers import (
    TemporaryDeliveryError,
    configuration_problems,
    provider_for,
    reply_unavailable_reason,
)
from tests import factories

from .conftest import IGSID, PAGE_TOKEN, PSID, open_conversation

pytestmark = pytest.mark.django_db
AUTH = {"Authorization": f"Bearer {PAGE_TOKEN}"}


@pytest.fixture
def staff_client(client):
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "kind, account_field", [("messenger", "page_id"), ("instagram", "instagram_account_id")]
)
def test_a_meta_channel_is_configured_with_named_fields_and_write_only_secrets(
    staff_client, kind, account_field
):
    add = "/admin/communications/channel/add/"
    page = staff_client.get(f"{add}?kind={kind}").content.decode()
    for name in (account_field, "human_agent", "page_access_token", "app_secret", "verify_token"):
        assert f'name="{name}"' in page
    assert 'name="config"' not in page
    staff_client.post(
        add,
        {
            "kind": kind,
            "name": "Shop",
            "is_active": "on",
            account_field: " 1784 ",
            "human_agent": "on",
            "page_access_token": "EAAB-secret",
            "app_secret": "s3cret",
            "verify_token": "v",
            "_save": "Save",
        },
    )
    channel = Channel.objects.get(name="Shop")
    assert channel.config == {account_field: "1784", "human_agent": True}
    assert channel.secrets == {
        "page_access_token": "EAAB-secret",
        "app_secret": "s3cret",
        "verify_token": "v",
    }
    change = f"/admin/communications/channel/{channel.pk}/change/"
    page = staff_client.get(change).content.decode()
    assert "EAAB-secret" not in page and "s3cret" not in page
    assert f"http://testserver/webhooks/meta/{channel.pk}/" in page
    # Unticking the box and leaving the secrets blank: the box is off, the secrets kept.
    staff_client.post(change, {"name": "Shop", "is_active": "on", account_field: "1784"})
    channel.refresh_from_db()
    assert channel.config == {account_field: "1784"}
    assert channel.secrets["page_access_token"] == "EAAB-secret"


def test_a_channel_without_token_says_so_and_cannot_reply(db):
    channel = factories.ChannelFactory(kind="messenger", config={"page_id": "1"})
    texts = [p.text for p in configuration_problems(channel)]
    assert "Page access token is not set: nothing can be sent" in texts
    assert reply_unavailable_reason(channel) == (
        "this Messenger channel isn't set up yet — ask an admin"
    )
    # Setting it up comes first, whatever the conversation's window says.
    closed = open_conversation(channel, PSID, hours_ago=30)
    assert reply_unavailable_reason(channel, closed) == (
        "this Messenger channel isn't set up yet — ask an admin"
    )


def test_test_connection_asks_graph_me(staff_client, messenger, graph):
    graph.expect_request(
        "/v21.0/me", headers=AUTH, query_string="fields=id%2Cname"
    ).respond_with_json({"id": "108456123456789", "name": "Acme Shop"})
    response = staff_client.post(
        "/admin/communications/channel/",
        {"action": "test_connection", "_selected_action": [messenger.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Connected to Messenger as Acme Shop (id 108456123456789)" in page


def test_test_connection_says_why_it_failed(staff_client, messenger, graph):
    graph.expect_request("/v21.0/me").respond_with_json(
        {"error": {"message": "Error validating access token: Session has expired", "code": 190}},
        status=400,
    )
    page = staff_client.post(
        "/admin/communications/channel/",
        {"action": "test_connection", "_selected_action": [messenger.pk]},
        follow=True,
    ).content.decode()
    assert "Session has expired" in page and "admin → Channels" in page


def test_check_connection_rate_limit_is_temporary(messenger, graph):
    graph.expect_request("/v21.0/me").respond_with_json(
        {"error": {"message": "Page request limit reached", "code": 32}}, status=400
    )
    with pytest.raises(TemporaryDeliveryError):
        provider_for(messenger).check_connection()


def test_messenger_profile_with_picture(messenger, graph):
    picture = b"\xff\xd8\xff\xe0avatar"
    graph.expect_request(
        f"/v21.0/{PSID}", headers=AUTH, query_string="fields=first_name%2Clast_name%2Cprofile_pic"
    ).respond_with_json(
        {
            "first_name": "Peter",
            "last_name": "Chang",
            "profile_pic": graph.url_for("/pics/peter.jpg"),
            "id": PSID,
        }
    )
    graph.expect_request("/pics/peter.jpg").respond_with_data(picture, content_type="image/jpeg")
    identity = ContactIdentity.objects.get(
        external_id=open_conversation(messenger, PSID).external_id
    )
    profile = provider_for(messenger).fetch_profile(identity)
    assert (profile.name, profile.username) == ("Peter Chang", "")
    assert profile.avatar == picture and profile.avatar_content_type == "image/jpeg"
    # The picture request carries no token: CDN URLs need none, and must not receive ours.
    assert "Authorization" not in graph.log[-1][0].headers


def test_instagram_profile_by_igsid(instagram, graph):
    graph.expect_request(
        f"/v21.0/{IGSID}", query_string="fields=name%2Cusername%2Cprofile_pic"
    ).respond_with_json({"name": "Ana Lima", "username": "ana.lima", "id": IGSID})
    identity = ContactIdentity.objects.get(
        external_id=open_conversation(instagram, IGSID).external_id
    )
    profile = provider_for(instagram).fetch_profile(identity)
    assert (profile.name, profile.username, profile.avatar) == ("Ana Lima", "ana.lima", None)


def test_profile_errors_retry_or_give_up(messenger, graph):
    identity = ContactIdentity.objects.get(
        external_id=open_conversation(messenger, PSID).external_id
    )
    graph.expect_oneshot_request(f"/v21.0/{PSID}").respond_with_json({}, status=503)
    with pytest.raises(TemporaryDeliveryError):
        provider_for(messenger).fetch_profile(identity)
    graph.expect_oneshot_request(f"/v21.0/{PSID}").respond_with_json(
        {"error": {"message": "Unsupported get request", "code": 100, "error_subcode": 33}},
        status=400,
    )
    assert provider_for(messenger).fetch_profile(identity) is None
