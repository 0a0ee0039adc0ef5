"""seed_demo: one outgoing webhook subscription with a few deliveries in its log."""

import pytest
from django.core.management import call_command

from communications.models import OutgoingWebhookDelivery, OutgoingWebhookSubscription

pytestmark = pytest.mark.django_db


def test_demo_has_a_subscription_with_a_delivery_log(client, django_user_model):
    call_command("seed_demo")
    client.force_login(django_user_model.objects.get(username="admin"))
    subscription = OutgoingWebhookSubscription.objects.get()
    assert not subscription.is_active and subscription.disabled_reason  # posts nowhere
    log = OutgoingWebhookDelivery.objects.filter(subscription=subscription).order_by("id")
    assert [(d.state, d.attempts) for d in log] == [
        ("delivered", 1),
        ("delivered", 2),
        ("failed", 3),
    ]
    page = client.get(f"/admin/communications/outgoingwebhookdelivery/{log[1].pk}/change/")
    assert page.status_code == 200 and b"HTTP 500: upstream timeout" in page.content
    call_command("seed_demo")
    assert OutgoingWebhookSubscription.objects.count() == 1
