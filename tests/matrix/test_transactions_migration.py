"""ProcessedTransaction's rows move into the webhook log: a transaction processed before the
upgrade is still a duplicate when Synapse re-sends it afterwards."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from communications.models import WebhookDelivery
from integrations.matrix import appservice, settings_cache
from integrations.matrix.models import MatrixSettings

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("integrations", "0006_whatsapp_templates"),
    ("communications", "0019_realtime_event_views"),
]
BODY = json.dumps({"events": []}).encode()


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_processed_transactions_stay_processed():
    old = _migrate(BEFORE)
    Processed = old.get_model("integrations", "ProcessedTransaction")
    Processed.objects.create(txn_id=appservice.transaction_key("12", BODY), event_count=0)
    stale = Processed.objects.create(txn_id="1:old", event_count=1)
    Processed.objects.filter(pk=stale.pk).update(processed_at=timezone.now() - timedelta(days=60))

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    copied = WebhookDelivery.objects.get()  # only the one within the log's retention
    assert (copied.source, copied.channel_id, copied.verdict, copied.outcome) == (
        "matrix",
        None,
        "accepted",
        "done",
    )
    MatrixSettings.objects.create(
        pk=1,
        whatsapp_mode="matrix",
        homeserver_url="http://127.0.0.1:9",
        server_name="example.org",
        auth_mode=MatrixSettings.AuthMode.APPSERVICE,
        secrets={"as_token": "as", "hs_token": "hs"},
    )
    settings_cache.invalidate()
    try:
        response = Client().put(
            "/matrix/appservice/_matrix/app/v1/transactions/12",
            data=BODY,
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer hs",
        )
    finally:
        settings_cache.invalidate()
    assert response.status_code == 200
    assert WebhookDelivery.objects.filter(verdict="duplicate").count() == 1
    assert WebhookDelivery.objects.filter(verdict="accepted").count() == 1
