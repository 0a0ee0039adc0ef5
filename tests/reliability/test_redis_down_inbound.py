"""Redis down must not stop customers' messages: the web server (compose's uvicorn) on PostgreSQL
pointed at a redis-server of our own (cache, channel layer and Celery broker), which the test
kills with SIGKILL. Inbound on the API channel and the WhatsApp Cloud webhook is still accepted
and stored; the throttles degrade to per-process counting instead of failing the request."""

import json
from collections import Counter

import httpx
import pytest

from communications.models import Channel, Message
from integrations.whatsapp_cloud.webhook import signature_for
from tests import factories

from . import live

pytestmark = pytest.mark.redis

APP_SECRET = "app-secret"
PHONE_NUMBER_ID = "106540352242922"


def whatsapp_delivery(wamid: str, kind: str = "text") -> bytes:
    message = {"from": "16505551234", "id": wamid, "timestamp": "1749416383", "type": kind}
    if kind == "text":
        message["text"] = {"body": f"text of {wamid}"}
    else:
        message["image"] = {"id": "media-404", "mime_type": "image/jpeg", "sha256": "x"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def test_inbound_is_stored_while_redis_is_down(transactional_db, tmp_path):
    live.require_postgres_and_redis()
    redis = live.OwnRedis(tmp_path / "redis")
    api = factories.ChannelFactory()
    whatsapp = Channel.objects.create(
        kind=Channel.Kind.WHATSAPP,
        name="WhatsApp Cloud",
        config={
            "phone_number_id": PHONE_NUMBER_ID,
            # Nothing listens there: media cannot be fetched while we are at it.
            "graph_api_base": f"http://127.0.0.1:{live.free_port()}/v21.0",
        },
        secrets={"access_token": "t", "app_secret": APP_SECRET, "verify_token": "v"},
    )
    token = {"Authorization": f"Bearer {api.secrets['inbound_token']}"}
    env = live.server_env(
        REDIS_URL=redis.url,
        CELERY_TASK_ALWAYS_EAGER="false",  # a real broker (the dead Redis) for media deliveries
        WEBHOOK_RATE_LIMIT="30/minute",
        WEBHOOK_AUTH_FAILURE_LIMIT="3/minute",
    )
    try:
        with live.web_servers(1, env, tmp_path / "logs") as ports:
            with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=60) as client:

                def post_api(external_id, headers=token):
                    return client.post(
                        f"/api/v1/channels/{api.pk}/inbound/",
                        json={
                            "external_id": external_id,
                            "sender": {"id": "customer-1", "name": "Ada"},
                            "text": f"text of {external_id}",
                        },
                        headers=headers,
                    )

                def post_whatsapp(body, secret=APP_SECRET):
                    return client.post(
                        f"/webhooks/whatsapp/{whatsapp.pk}/",
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Hub-Signature-256": signature_for(secret, body),
                        },
                    )

                before = post_api("while-up")
                assert before.status_code == 201, before.text[:500]
                redis.kill()

                down = post_api("while-down")
                assert down.status_code == 201, down.text[:500]
                assert post_api("while-down").status_code == 200  # a redelivery, not stored twice
                text = post_whatsapp(whatsapp_delivery("wamid.down-text"))
                assert text.status_code == 200, text.text[:500]
                assert text.json()["duplicate"] is False
                # Logged, and with the broker down processed in the request (media too) rather
                # than left waiting for it.
                media = post_whatsapp(whatsapp_delivery("wamid.down-image", kind="image"))
                assert media.status_code == 200, media.text[:500]

                # The throttles still hold, counted by this process alone.
                more = Counter(post_api(f"burst-{i}").status_code for i in range(40))
                wrong = [
                    post_api("x", headers={"Authorization": "Bearer wrong"}).status_code
                    for _ in range(5)
                ]
    finally:
        redis.kill()

    stored = set(Message.objects.filter(channel=api).values_list("external_id", flat=True))
    assert {"while-up", "while-down"} <= stored
    assert Message.objects.filter(channel=api, external_id="while-down").count() == 1
    assert set(Message.objects.filter(channel=whatsapp).values_list("external_id", flat=True)) == {
        "wamid.down-text",
        "wamid.down-image",
    }
    # 30 per minute per channel: 3 were counted in Redis before it died, the rest locally.
    assert more[429] > 0 and set(more) == {201, 429}, more
    assert wrong == [401, 401, 401, 429, 429]
