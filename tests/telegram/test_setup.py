"""Setting the bot up: the setWebhook command, the admin's actions and the channel form."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from communications.models import Channel, Message
from tests import factories

from .conftest import BOT_TOKEN, WEBHOOK_SECRET, error, fixture_bytes, method_path, ok, post_update

pytestmark = pytest.mark.django_db

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts


def set_webhook(**options) -> str:
    out = StringIO()
    call_command("telegram_set_webhook", stdout=out, **options)
    return out.getvalue()


def test_the_command_sets_the_webhook_with_a_new_secret(client, tg_channel, bot_api):
    bot_api.expect_oneshot_request(method_path("setWebhook"), method="POST").respond_with_json(
        ok(True) | {"description": "Webhook was set"}
    )
    output = set_webhook(channel=tg_channel.pk, public_url="https://crm.example.com/")
    url = f"https://crm.example.com/webhooks/telegram/{tg_channel.pk}/"
    assert f"Telegram now delivers message, edited_message updates to {url}" in output
    [(request, _)] = bot_api.log
    body = request.get_json()
    tg_channel.refresh_from_db()
    secret = tg_channel.secrets["webhook_secret"]
    assert body == {
        "url": url,
        "secret_token": secret,
        "allowed_updates": ["message", "edited_message"],
    }
    assert SECRET_TOKEN.match(secret) and secret != WEBHOOK_SECRET
    assert tg_channel.secrets["bot_token"] == BOT_TOKEN
    # Telegram's next update carries the new secret: accepted; the old one is refused.
    assert (
        post_update(client, tg_channel, fixture_bytes("text.json"), secret=secret).status_code
        == 200
    )
    assert post_update(client, tg_channel, fixture_bytes("edited.json")).status_code == 401


def test_when_telegram_refuses_the_old_secret_stays(tg_channel, bot_api):
    bot_api.expect_oneshot_request(method_path("setWebhook")).respond_with_json(
        error(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known"),
        status=400,
    )
    with pytest.raises(CommandError, match="bad webhook: Failed to resolve host"):
        set_webhook(channel=tg_channel.pk, public_url="https://nowhere.invalid")
    tg_channel.refresh_from_db()
    assert tg_channel.secrets["webhook_secret"] == WEBHOOK_SECRET


def test_the_command_refuses_what_telegram_would(tg_channel, bot_api):
    with pytest.raises(CommandError, match="HTTPS only"):
        set_webhook(channel=tg_channel.pk, public_url="http://crm.example.com")
    with pytest.raises(CommandError, match="no Telegram channel with id"):
        set_webhook(channel=factories.ChannelFactory().pk, public_url="https://crm.example.com")
    tg_channel.secrets = {}
    tg_channel.save()
    with pytest.raises(CommandError, match="no bot token"):
        set_webhook(channel=tg_channel.pk, public_url="https://crm.example.com")
    assert bot_api.log == []


@pytest.fixture
def staff_client(client):
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


def run_action(staff_client, action: str, *channels, secure=False):
    return staff_client.post(
        "/admin/communications/channel/",
        {"action": action, "_selected_action": [c.pk for c in channels]},
        follow=True,
        secure=secure,
    )


def test_test_connection_says_who_the_bot_is(staff_client, tg_channel, bot_api):
    bot_api.expect_oneshot_request(method_path("getMe"), method="POST").respond_with_json(
        ok(
            {
                "id": 123456789,
                "is_bot": True,
                "first_name": "Shop",
                "username": "shop_bot",
                "can_join_groups": True,
            }
        )
    )
    page = run_action(staff_client, "test_connection", tg_channel).content.decode()
    assert "Shop bot (Telegram): Connected as @shop_bot" in page


def test_test_connection_reports_a_wrong_token(staff_client, tg_channel, bot_api):
    bot_api.expect_request(method_path("getMe")).respond_with_json(
        error(401, "Unauthorized"), status=401
    )
    api_channel = factories.ChannelFactory(name="Website")
    page = run_action(staff_client, "test_connection", tg_channel, api_channel).content.decode()
    assert "Shop bot (Telegram): Telegram refused the bot token (Unauthorized)" in page
    assert "Website (HTTP API): this kind of channel has no connection test" in page


def test_the_admin_action_sets_the_webhook_at_the_address_staff_use(
    staff_client, tg_channel, bot_api
):
    bot_api.expect_oneshot_request(method_path("setWebhook")).respond_with_json(ok(True))
    page = run_action(staff_client, "register_webhook", tg_channel, secure=True).content.decode()
    url = f"https://testserver/webhooks/telegram/{tg_channel.pk}/"
    assert (
        f"Shop bot (Telegram): Telegram now delivers message, edited_message updates to {url}"
        in page
    )
    assert bot_api.log[0][0].get_json()["url"] == url
    # Over plain HTTP (a development server) Telegram would refuse: said before calling it.
    page = run_action(staff_client, "register_webhook", tg_channel).content.decode()
    assert "Telegram delivers webhooks over HTTPS only" in page
    assert len(bot_api.log) == 1


def test_the_channel_form_has_a_write_only_token_and_the_webhook_url(staff_client, tg_channel):
    url = f"/admin/communications/channel/{tg_channel.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert BOT_TOKEN not in page and WEBHOOK_SECRET not in page
    assert 'name="bot_token"' in page and 'type="password"' in page
    webhook_url = f"http://testserver/webhooks/telegram/{tg_channel.pk}/"
    assert f'<code class="webhook-url">{webhook_url}</code>' in page, "ready to paste"
    assert "telegram_set_webhook --channel ID" in page
    response = staff_client.post(url, {"name": "Shop bot", "is_active": "on", "bot_token": ""})
    assert response.status_code == 302
    tg_channel.refresh_from_db()
    assert tg_channel.secrets == {"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET}
    staff_client.post(url, {"name": "Shop bot", "is_active": "on", "bot_token": "987:new"})
    tg_channel.refresh_from_db()
    assert tg_channel.secrets == {"bot_token": "987:new", "webhook_secret": WEBHOOK_SECRET}


def test_a_new_telegram_channel_asks_for_the_token(staff_client):
    page = staff_client.get("/admin/communications/channel/add/?kind=telegram").content.decode()
    assert 'name="bot_token"' in page
    assert Channel.objects.count() == 0 and Message.objects.count() == 0


def test_the_demos_telegram_conversations_can_be_answered():
    from communications.providers import reply_unavailable_reason

    call_command("seed_demo", stdout=StringIO())
    channel = Channel.objects.get(kind=Channel.Kind.TELEGRAM)
    assert channel.secrets["bot_token"]
    assert reply_unavailable_reason(channel) == ""
    for conversation in channel.conversations.select_related("contact"):
        # Private chats as Telegram names them: the user's numeric id; the handle is the username.
        assert conversation.external_id.isdigit()
        identity = conversation.contact.identities.get(channel=channel)
        assert identity.external_id == conversation.external_id
        assert identity.username and conversation.contact.username == identity.username
    assert channel.conversations.count() == 2
