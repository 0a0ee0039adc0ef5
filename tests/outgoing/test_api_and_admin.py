"""/api/v1/outgoing-webhooks/ (staff only, the secret write-only) and the admin's delivery log
with its redeliver action."""

import pytest
from rest_framework.test import APIClient

from communications.models import OutgoingWebhookDelivery, OutgoingWebhookSubscription
from communications.services import outgoing_webhooks
from tests import factories

from .conftest import customer_writes

pytestmark = pytest.mark.django_db

URL = "/api/v1/outgoing-webhooks/"


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def test_create_shows_the_secret_once_and_never_again(staff_api):
    response = staff_api.post(
        URL,
        {"url": "https://crm.example.com/hook", "events": ["message.created", "message.created"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["signing_secret"].startswith("whsec_") and "secret" not in body
    assert body["events"] == ["message.created"] and body["is_active"] is True
    subscription = OutgoingWebhookSubscription.objects.get()
    assert subscription.signing_secret == body["signing_secret"]
    listed = staff_api.get(URL).json()
    assert [s["id"] for s in listed] == [subscription.pk]
    detail = staff_api.get(f"{URL}{subscription.pk}/").json()
    assert "secret" not in detail and "signing_secret" not in detail
    assert body["signing_secret"] not in str(listed) + str(detail)


def test_update_secret_reenable_and_delete(staff_api):
    subscription = OutgoingWebhookSubscription.objects.create(
        url="https://a.example/h",
        events=["message.created"],
        secrets={"signing_secret": "old-secret-old-secret"},
        is_active=False,
        disabled_reason="10 deliveries in a row failed",
        consecutive_failures=10,
    )
    response = staff_api.patch(
        f"{URL}{subscription.pk}/",
        {"secret": "a-new-secret-of-length", "is_active": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["disabled_reason"] == "" and "secret" not in response.json()
    subscription.refresh_from_db()
    assert subscription.signing_secret == "a-new-secret-of-length"
    assert subscription.is_active and subscription.consecutive_failures == 0
    assert staff_api.delete(f"{URL}{subscription.pk}/").status_code == 204
    assert staff_api.get(f"{URL}{subscription.pk}/").status_code == 404


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"url": "ftp://x.example/h", "events": ["message.created"]}, "url"),
        ({"url": "https://x.example/h", "events": ["message.deleted"]}, "events"),
        ({"url": "https://x.example/h", "events": []}, "events"),
        (
            {"url": "https://x.example/h", "events": ["message.created"], "secret": "short"},
            "secret",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(staff_api, payload, field):
    response = staff_api.post(URL, payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert OutgoingWebhookSubscription.objects.count() == 0


def test_managers_are_refused(channel):
    client = APIClient()
    client.force_authenticate(factories.UserFactory())
    assert client.get(URL).status_code == 403
    assert (
        client.post(
            URL, {"url": "https://x.example/h", "events": ["message.created"]}, format="json"
        ).status_code
        == 403
    )
    assert APIClient().get(URL).status_code == 401


def test_delivery_log_pages_newest_first(staff_api, channel, subscribe, settings, monkeypatch):
    monkeypatch.setattr("communications.api.outgoing_webhooks.PAGE_LIMIT", 2)
    subscription = subscribe()
    customer_writes(channel, "a", "b", "c")
    url = f"{URL}{subscription.pk}/deliveries/"
    first = staff_api.get(url).json()
    ids = list(OutgoingWebhookDelivery.objects.order_by("-id").values_list("id", flat=True))
    assert [d["id"] for d in first["results"]] == ids[:2]
    assert first["results"][0]["state"] == "pending" and first["results"][0]["attempts"] == 0
    second = staff_api.get(url, {"cursor": first["next_cursor"]}).json()
    assert [d["id"] for d in second["results"]] == ids[2:] and second["next_cursor"] is None
    assert staff_api.get(url, {"cursor": "x"}).status_code == 400
    assert staff_api.get(url, {"state": "lost"}).status_code == 400
    assert staff_api.get(f"{URL}999999/deliveries/").status_code == 404


def test_admin_lists_the_log_and_redelivers(admin_client, channel, subscribe, httpserver):
    subscribe()
    httpserver.expect_request("/hook").respond_with_data("ok")
    customer_writes(channel, "hello")
    outgoing_webhooks.drain()
    delivery = OutgoingWebhookDelivery.objects.get()
    page = admin_client.get("/admin/communications/outgoingwebhookdelivery/")
    assert page.status_code == 200 and b"message.created" in page.content
    detail = admin_client.get(
        f"/admin/communications/outgoingwebhookdelivery/{delivery.pk}/change/"
    )
    assert detail.status_code == 200 and b"200" in detail.content
    response = admin_client.post(
        "/admin/communications/outgoingwebhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    outgoing_webhooks.drain()
    assert len(httpserver.log) == 2


def test_admin_creates_a_subscription_with_a_generated_secret(admin_client):
    response = admin_client.post(
        "/admin/communications/outgoingwebhooksubscription/add/",
        {
            "name": "ERP",
            "url": "https://erp.example.com/hook",
            "events": ["message.created", "contact.updated"],
            "is_active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    subscription = OutgoingWebhookSubscription.objects.get()
    assert subscription.signing_secret.startswith("whsec_")
    assert subscription.signing_secret.encode() in response.content  # shown once
    page = admin_client.get(
        f"/admin/communications/outgoingwebhooksubscription/{subscription.pk}/change/"
    )
    assert subscription.signing_secret.encode() not in page.content


def test_list_filters_by_active(staff_api):
    on = OutgoingWebhookSubscription.objects.create(url="https://a.example/h", events=["x"])
    OutgoingWebhookSubscription.objects.create(
        url="https://b.example/h", events=[], is_active=False
    )
    assert [s["id"] for s in staff_api.get(URL, {"is_active": "true"}).json()] == [on.pk]
    assert len(staff_api.get(URL, {"is_active": ""}).json()) == 2
    response = staff_api.get(URL, {"is_active": "maybe"})
    assert response.status_code == 400 and "is_active" in response.json()
