"""The webhook log (communications/webhooks.py): every delivery kept with its verdict, answered
after one INSERT, processed in leased batches, replayable without doubling anything."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communications import webhooks
from communications.models import Channel, Message, WebhookDelivery
from integrations.whatsapp_cloud.webhook import signature_for
from tests import factories
from tests.whatsapp_cloud.conftest import APP_SECRET, PHONE_NUMBER_ID, fixture_bytes, post_signed

Outcome = WebhookDelivery.Outcome


def text_delivery(wamid: str, text: str = "hello") -> bytes:
    payload = json.loads(fixture_bytes("text_message.json"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = wamid
    message["text"]["body"] = text
    return json.dumps(payload).encode()


def test_bad_signature_is_401_kept_as_such_and_stores_no_message(client, wa_channel):
    response = post_signed(client, wa_channel, text_delivery("wamid.A"), signature="sha256=00")
    assert response.status_code == 401
    assert Message.objects.count() == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.verdict, delivery.outcome) == ("bad_signature", "skipped")
    assert delivery.headers["X-Hub-Signature-256"] == "sha256=00"


def test_malformed_is_400_naming_the_problem_and_kept_for_inspection(client, wa_channel):
    response = post_signed(client, wa_channel, b'{"object": "whatsapp_business_account"}')
    assert response.status_code == 400
    assert "'entry' is a required property" in response.json()["detail"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.verdict == "malformed" and "'entry'" in delivery.reason
    assert bytes(delivery.body) == b'{"object": "whatsapp_business_account"}'


def test_a_signed_megabyte_of_garbage_is_a_400_not_a_500(client, wa_channel):
    garbage = bytes(range(256)) * 4096
    response = post_signed(client, wa_channel, garbage)
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.verdict == "malformed"
    assert len(bytes(delivery.body)) == webhooks.REJECTED_BODY_BYTES  # only the head is kept


def test_the_door_costs_two_queries_and_the_worker_does_the_rest(client, wa_channel, monkeypatch):
    kicked = []
    monkeypatch.setattr(webhooks, "kick", lambda: kicked.append(1) or True)
    with CaptureQueriesContext(connection) as queries:
        response = post_signed(client, wa_channel, text_delivery("wamid.Q"))
    assert response.status_code == 200 and kicked == [1]
    # The channel, the INSERT … ON CONFLICT DO NOTHING, and nothing else.
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert Message.objects.count() == 0
    assert webhooks.drain() == 1
    assert Message.objects.get().external_id == "wamid.Q"


def test_replay_stores_nothing_twice(client, wa_channel):
    post_signed(client, wa_channel, text_delivery("wamid.R"))
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "done"
    assert webhooks.replay([delivery.pk]) == 1
    webhooks.drain()
    delivery.refresh_from_db()
    assert delivery.outcome == "done" and delivery.attempts == 2
    assert Message.objects.filter(external_id="wamid.R").count() == 1


def test_a_killed_workers_claim_is_taken_again_when_its_lease_runs_out(
    client, wa_channel, monkeypatch
):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    post_signed(client, wa_channel, text_delivery("wamid.K"))
    claimed = webhooks.claim_batch()  # the worker claims it … and dies before processing
    assert len(claimed) == 1
    assert webhooks.claim_batch() == []  # nobody else takes it while the lease runs
    WebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert webhooks.drain() == 1
    assert Message.objects.get().external_id == "wamid.K"


class ExplodingReceiver(webhooks.WebhookReceiver):
    """Processes deliveries whose body is b'ok'; raises on the others."""

    source = "exploding"
    channel_kinds = (Channel.Kind.API,)
    processed: list

    def process(self, channel, deliveries):
        if any(bytes(d.body) != b"ok" for d in deliveries):
            raise RuntimeError("cannot translate this delivery")
        self.processed.extend(d.pk for d in deliveries)


@pytest.fixture
def exploding(db):
    receiver = ExplodingReceiver()
    receiver.processed = []
    webhooks.register_receiver(receiver)
    yield receiver
    webhooks._receivers.pop("exploding")


def test_one_bad_delivery_fails_alone_retries_with_backoff_then_shows_why(
    exploding, settings, monkeypatch
):
    monkeypatch.setattr(webhooks, "kick", lambda: True)
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    channel = factories.ChannelFactory()
    ids = [
        webhooks.log_accepted(channel, "exploding", {}, body)[0] for body in (b"ok", b"bad", b"ok ")
    ]
    webhooks.drain()
    assert exploding.processed == [ids[0]]
    outcomes = dict(WebhookDelivery.objects.values_list("id", "outcome"))
    assert outcomes == {ids[0]: "done", ids[1]: "processing", ids[2]: "processing"}
    bad = WebhookDelivery.objects.get(pk=ids[1])
    assert "cannot translate" in bad.reason and bad.lease_until > timezone.now()
    WebhookDelivery.objects.update(lease_until=timezone.now())  # the backoff has passed
    webhooks.drain()
    failed = WebhookDelivery.objects.filter(outcome="failed")
    assert sorted(failed.values_list("id", flat=True)) == ids[1:]
    assert webhooks.webhook_health()["failed_last_day"] == 2


def test_prune_keeps_what_waits(db, settings):
    channel = factories.ChannelFactory()
    old = timezone.now() - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS + 1)
    for outcome in ("done", "skipped", "failed", "pending", "processing"):
        WebhookDelivery.objects.create(
            channel=channel,
            source="api",
            body=b"{}",
            verdict="accepted" if outcome != "skipped" else "malformed",
            dedup_key=outcome,
            outcome=outcome,
            received_at=old,
        )
    assert webhooks.prune() == 3
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {
        "pending",
        "processing",
    }


def test_health_says_stale_while_deliveries_wait(db, settings):
    channel = factories.ChannelFactory()
    WebhookDelivery.objects.create(
        channel=channel,
        source="api",
        body=b"{}",
        verdict="accepted",
        outcome="pending",
        received_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_STALL_SECONDS + 5),
    )
    assert webhooks.webhook_health()["status"] == "stale"


def test_api_channel_answers_202_when_asked_to_respond_async(db, api_client_for_channel):
    client, channel = api_client_for_channel
    body = {"external_id": "async-1", "sender": {"id": "c1", "name": "Ada"}, "text": "hi"}
    first = client.post(
        f"/api/v1/channels/{channel.pk}/inbound/",
        body,
        format="json",
        headers={"Prefer": "respond-async"},
    )
    assert first.status_code == 202, first.content
    assert first.json()["duplicate"] is False
    again = client.post(
        f"/api/v1/channels/{channel.pk}/inbound/",
        body,
        format="json",
        headers={"Prefer": "respond-async"},
    )
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert Message.objects.filter(channel=channel, external_id="async-1").count() == 1
    sync = client.post(f"/api/v1/channels/{channel.pk}/inbound/", body, format="json")
    assert sync.status_code == 200 and sync.json()["content"] == "hi"


@pytest.fixture
def api_client_for_channel(db):
    from rest_framework.test import APIClient

    channel = factories.ChannelFactory(kind=Channel.Kind.API, secrets={"inbound_token": "tok"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer tok")
    return client, channel


@pytest.mark.django_db(transaction=True)
def test_ten_identical_deliveries_at_once_store_one_message():
    channel = factories.ChannelFactory(
        kind=Channel.Kind.WHATSAPP,
        config={"phone_number_id": PHONE_NUMBER_ID},
        secrets={"app_secret": APP_SECRET},
    )
    body = text_delivery("wamid.RACE")
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        barrier.wait()
        response = Client().post(
            f"/webhooks/whatsapp/{channel.pk}/",
            body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": signature_for(APP_SECRET, body)},
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
    webhooks.drain()
    assert Message.objects.filter(external_id="wamid.RACE").count() == 1


def test_a_full_batch_asks_a_second_worker_to_help_once(exploding, settings, monkeypatch):
    from communications import tasks

    monkeypatch.setattr(webhooks, "kick", lambda: True)
    settings.WEBHOOK_BATCH_SIZE = 2
    settings.CELERY_TASK_ALWAYS_EAGER = False
    helpers = []
    monkeypatch.setattr(tasks.process_webhook_deliveries, "delay", lambda: helpers.append(1))
    channel = factories.ChannelFactory()
    for index in range(5):  # batches of 2, 2, 1: the first full one asks, the rest do not
        webhooks.log_accepted(channel, "exploding", {}, b"ok", dedup_key=f"k{index}")
    assert webhooks.drain() == 5
    assert helpers == [1]
    settings.WEBHOOK_BATCH_SIZE = 10
    webhooks.log_accepted(channel, "exploding", {}, b"ok", dedup_key="k9")
    assert webhooks.drain() == 1 and helpers == [1]  # no backlog, no helper
