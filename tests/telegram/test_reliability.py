"""The Telegram webhook under hostile input, concurrency, and its query cost."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings

from communications import webhooks
from communications.models import Channel, Message, WebhookDelivery
from integrations.telegram.webhook import process_updates
from tests.reliability.fuzzing import bent, stored_counts

from .conftest import BOT_TOKEN, WEBHOOK_SECRET, fixture_json, post_update

USER = {"id": 111222333, "is_bot": False, "first_name": "Olga", "username": "olga_p"}
CHAT = {"id": 111222333, "type": "private", "first_name": "Olga"}
KITCHEN_SINK = {
    "update_id": 900,
    "message": {
        "message_id": 7,
        "from": USER,
        "chat": CHAT,
        "date": 1764930000,
        "text": "hi",
        "reply_to_message": {"message_id": 6, "chat": CHAT, "date": 1764929000, "text": "?"},
        "location": {"latitude": 50.45, "longitude": 30.52},
        "venue": {"title": "Shop", "address": "Main st 1"},
        "contact": {"phone_number": "+380671234567", "first_name": "Ivan", "user_id": 444},
    },
}


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=bent(KITCHEN_SINK)
    | bent({**KITCHEN_SINK, "edited_message": KITCHEN_SINK["message"], "message": None})
)
def test_any_authentic_update_is_a_200_or_a_400_that_stores_nothing(client, tg_channel, payload):
    if isinstance(payload, dict) and payload.get("message", 0) is None:
        payload.pop("message")
    before = stored_counts()
    response = post_update(client, tg_channel, json.dumps(payload).encode())
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["detail"]
        assert stored_counts() == before
    else:
        assert WebhookDelivery.objects.filter(outcome="failed").count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"[" * (512 * 1024) + b"]" * (512 * 1024),
        b'{"update_id": 1, "message": ' + b'{"a": ' * 100 + b"1" + b"}" * 101,
        b'{"update_id": 1, "x": "\\u0000"}',
        b'{"update_id": NaN}',
    ],
    ids=["1MiB-nested", "deep-object", "nul", "nan"],
)
def test_hostile_json_is_a_400(client, tg_channel, body):
    response = post_update(client, tg_channel, body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_ten_identical_deliveries_at_once_store_one_message(settings):
    settings.TELEGRAM_API_BASE = "http://127.0.0.1:9"  # never called for a text
    channel = Channel.objects.create(
        kind=Channel.Kind.TELEGRAM,
        name="Race bot",
        secrets={"bot_token": BOT_TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )
    body = json.dumps(fixture_json("text.json")).encode()
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        barrier.wait()
        response = Client().post(
            f"/webhooks/telegram/{channel.pk}/",
            body,
            content_type="application/json",
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    verdicts = sorted(WebhookDelivery.objects.values_list("verdict", flat=True))
    assert verdicts == ["accepted"] + ["duplicate"] * 9
    webhooks.drain(max_seconds=5)
    assert Message.objects.filter(channel=channel).count() == 1


@pytest.mark.django_db
def test_a_batch_of_updates_costs_a_fixed_number_of_queries(tg_channel, count_queries):
    def updates(first_id: int, count: int) -> list[dict]:
        batch = []
        for n in range(count):
            payload = fixture_json("text.json")
            payload["update_id"] = first_id + n
            payload["message"]["message_id"] = first_id + n
            payload["message"]["chat"] = {**CHAT, "id": 5000 + n}
            payload["message"]["from"] = {**USER, "id": 5000 + n}
            batch.append(payload)
        return batch

    with count_queries() as small:
        assert process_updates(tg_channel, updates(1, 2)) == 2
    with count_queries() as large:
        assert process_updates(tg_channel, updates(100, 40)) == 40
    assert small.count == large.count, large.explain()
    assert large.count == 12, large.explain()
