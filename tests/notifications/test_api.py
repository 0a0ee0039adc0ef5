"""The notification settings and push-subscription API: what the inbox page calls."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from communications.notifications.models import NotificationPreference, PushSubscription
from tests import factories

from .conftest import Browser

pytestmark = pytest.mark.django_db
SETTINGS = "/api/v1/notifications/settings/"
SUBSCRIPTIONS = "/api/v1/notifications/push-subscriptions/"
FCM = "https://fcm.googleapis.com/fcm/send/abc:APA91b"


def subscription_json(endpoint=FCM, browser=None):
    browser = browser or Browser.new()
    return {"endpoint": endpoint, "expirationTime": None, "keys": browser.keys()}


def test_settings_default_to_mine_without_a_row_and_say_push_is_off(api, manager, settings):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    response = api.get(SETTINGS)
    assert response.status_code == 200
    assert response.json() == {
        "level": "mine",
        "sound": False,
        "push": {"available": False, "public_key": None, "subscriptions": 0},
    }
    assert not NotificationPreference.objects.exists()  # reading creates nothing


def test_settings_are_saved_per_manager(api, manager, vapid_keys):
    response = api.patch(SETTINGS, {"level": "all", "sound": True}, format="json")
    assert response.status_code == 200
    assert response.json()["level"] == "all" and response.json()["sound"] is True
    assert response.json()["push"]["available"] is True
    assert response.json()["push"]["public_key"] == vapid_keys[0]
    assert api.patch(SETTINGS, {"sound": False}, format="json").json()["level"] == "all"
    preference = NotificationPreference.objects.get(user=manager)
    assert (preference.level, preference.sound) == ("all", False)
    other = APIClient()
    other.force_authenticate(factories.UserFactory())
    assert other.get(SETTINGS).json()["level"] == "mine"


def test_a_bad_level_is_a_400_naming_it(api):
    response = api.patch(SETTINGS, {"level": "loud"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["level"]


def test_anonymous_is_401():
    assert APIClient().get(SETTINGS).status_code == 401
    assert APIClient().post(SUBSCRIPTIONS, {}, format="json").status_code == 401


def test_subscribe_then_again_then_unsubscribe(api, manager, vapid_keys):
    body = subscription_json()
    created = api.post(SUBSCRIPTIONS, body, format="json", HTTP_USER_AGENT="Firefox/140")
    assert created.status_code == 201
    assert created.json()["endpoint"] == FCM and created.json()["user_agent"] == "Firefox/140"
    again = api.post(SUBSCRIPTIONS, body, format="json")
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    assert [s["id"] for s in api.get(SUBSCRIPTIONS).json()] == [created.json()["id"]]
    assert api.get(SETTINGS).json()["push"]["subscriptions"] == 1

    unsubscribe = f"{SUBSCRIPTIONS}unsubscribe/"
    assert api.post(unsubscribe, {"endpoint": FCM}, format="json").status_code == 204
    assert api.post(unsubscribe, {"endpoint": FCM}, format="json").status_code == 404
    assert not PushSubscription.objects.exists()


def test_the_same_browser_signed_in_as_someone_else_takes_the_subscription_over(
    api, manager, vapid_keys
):
    colleague = APIClient()
    colleague.force_authenticate(factories.UserFactory(username="colleague"))
    body = subscription_json()
    assert api.post(SUBSCRIPTIONS, body, format="json").status_code == 201
    assert colleague.post(SUBSCRIPTIONS, body, format="json").status_code == 200
    assert PushSubscription.objects.get().user.username == "colleague"
    assert api.get(SUBSCRIPTIONS).json() == []


def test_delete_by_id_only_ones_own(api, manager, vapid_keys):
    mine = api.post(SUBSCRIPTIONS, subscription_json(), format="json").json()["id"]
    theirs = PushSubscription.objects.create(
        user=factories.UserFactory(), endpoint=FCM + "other", **_keys()
    )
    assert api.delete(f"{SUBSCRIPTIONS}{theirs.pk}/").status_code == 404
    assert api.delete(f"{SUBSCRIPTIONS}{mine}/").status_code == 204
    assert api.delete(f"{SUBSCRIPTIONS}{mine}/").status_code == 404
    assert list(PushSubscription.objects.values_list("pk", flat=True)) == [theirs.pk]


def _keys():
    keys = Browser.new().keys()
    return {"p256dh": keys["p256dh"], "auth": keys["auth"]}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"endpoint": "https://10.0.0.5/push"}, "endpoint"),  # not a push service: never called
        ({"endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "endpoint"),  # not https
        ({"endpoint": "not a url"}, "endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": "x"}}, "keys"),
        ({"keys": {"auth": "x"}}, "keys"),
        ({"expirationTime": "soon"}, "expirationTime"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(api, vapid_keys, change, field):
    response = api.post(SUBSCRIPTIONS, {**subscription_json(), **change}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not PushSubscription.objects.exists()


def test_subscribing_without_vapid_keys_is_a_409_saying_so(api, settings):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    response = api.post(SUBSCRIPTIONS, subscription_json(), format="json")
    assert response.status_code == 409
    assert "VAPID" in response.json()["detail"]


def test_the_schema_documents_every_status(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]

    def statuses(path, method):
        return set(paths[path][method]["responses"])

    assert statuses(SETTINGS, "get") == {"200", "401"}
    assert statuses(SETTINGS, "patch") == {"200", "400", "401"}
    assert statuses(SUBSCRIPTIONS, "get") == {"200", "401"}
    assert statuses(SUBSCRIPTIONS, "post") == {"200", "201", "400", "401", "409"}
    assert statuses(f"{SUBSCRIPTIONS}unsubscribe/", "post") == {"204", "400", "401", "404"}
    assert statuses(f"{SUBSCRIPTIONS}{{subscription_id}}/", "delete") == {"204", "401", "404"}


def test_webpush_keys_prints_a_working_pair(capsys, settings, tmp_path):
    from communications.notifications import push

    call_command("webpush_keys", "--subject", "mailto:ops@example.com")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert set(lines) == {"VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "VAPID_SUBJECT"}
    settings.VAPID_PUBLIC_KEY = lines["VAPID_PUBLIC_KEY"]
    settings.VAPID_PRIVATE_KEY = lines["VAPID_PRIVATE_KEY"]
    assert push.public_key_of(push.vapid()) == lines["VAPID_PUBLIC_KEY"]
    assert lines["VAPID_SUBJECT"] == "mailto:ops@example.com"

    env = tmp_path / ".env"
    env.write_text("DJANGO_DEBUG=False\n#VAPID_PUBLIC_KEY=\nVAPID_PRIVATE_KEY=old\n")
    call_command("webpush_keys", "--write", str(env))
    text = env.read_text()
    assert text.startswith("DJANGO_DEBUG=False\nVAPID_PUBLIC_KEY=")
    assert "VAPID_PRIVATE_KEY=old" not in text and text.count("VAPID_PRIVATE_KEY=") == 1
    assert "VAPID_SUBJECT=mailto:" in text


def test_a_mismatched_key_pair_is_a_system_check_warning_and_push_stays_off(
    settings, vapid_keys, api
):
    from django.core.checks import run_checks

    from communications.notifications import push

    settings.VAPID_PUBLIC_KEY = push.generate_keys()[0]  # another pair's public half
    warnings = [m for m in run_checks() if m.id == "notifications.W001"]
    assert len(warnings) == 1 and "not the public half" in warnings[0].msg
    assert api.get(SETTINGS).json()["push"] == {
        "available": False,
        "public_key": None,
        "subscriptions": 0,
    }


def test_staff_edit_a_managers_settings_in_the_admin(client, manager):
    admin = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    base = "/admin/notifications/notificationpreference/"
    assert client.get(base).status_code == 200
    response = client.post(f"{base}add/", {"user": manager.pk, "level": "none", "sound": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    preference = NotificationPreference.objects.get(user=manager)
    assert (preference.level, preference.sound) == ("none", True)
    assert client.get(f"{base}{manager.pk}/change/").status_code == 200
    assert client.get("/admin/notifications/pushsubscription/").status_code == 200
