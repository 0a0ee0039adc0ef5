"""Health, demo data, settings for production."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from communications.models import Attachment, Channel, Conversation, Message, WebhookDelivery
from crm import health

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_health_reports_each_dependency(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {"database", "cache", "channel_layer", "worker"} <= set(body["checks"])
    assert body["checks"]["database"]["status"] == "ok"


def test_health_is_503_when_a_required_dependency_is_down(client, monkeypatch):
    def broken():
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health._CHECKS, "cache", (broken, True))
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {
        "status": "down",
        "detail": "ConnectionError: connection refused",
        "required": True,
    }


def test_health_ignores_optional_dependencies_being_down(client, monkeypatch):
    monkeypatch.setitem(health._CHECKS, "extra", (lambda: {"status": "down"}, False))
    assert client.get("/health/").status_code == 200


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    counts = (Channel.objects.count(), Conversation.objects.count(), Message.objects.count())
    call_command("seed_demo")
    assert (
        Channel.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
    ) == counts
    assert counts[1] == 18  # 14, and the merge demo's 4 (one merged away: archived)
    assert set(Channel.objects.values_list("kind", flat=True)) == set(Channel.Kind.values)
    # Varied enough that the first screen shows what Switchboard does (issue 16, item 8).
    kinds_with_conversations = set(Conversation.objects.values_list("channel__kind", flat=True))
    assert kinds_with_conversations == set(Channel.Kind.values)
    assert set(Conversation.objects.values_list("status", flat=True)) == set(
        Conversation.Status.values
    )
    assert Conversation.objects.filter(snoozed_until__isnull=False).exists()
    assert Message.objects.filter(kind=Message.Kind.NOTE).exists()
    assert Message.objects.filter(status=Message.Status.FAILED).exclude(failure_reason="").exists()
    assert Message.objects.filter(send_attempts__gt=1, status=Message.Status.DELIVERED).exists()
    assert set(Attachment.objects.values_list("mime_type", flat=True)) >= {
        "image/jpeg",
        "application/pdf",
        "audio/wav",
    }
    assert Message.objects.filter(metadata__email__subject__startswith="Wrong size").exists()
    assert len(set(Message.objects.values_list("content", flat=True))) > 30
    verdicts = set(WebhookDelivery.objects.values_list("verdict", flat=True))
    assert verdicts == set(WebhookDelivery.Verdict.values)


def _manage(*args, env_overrides):
    # Other tests (Playwright's sync API) may set DJANGO_ALLOW_ASYNC_UNSAFE in this process.
    unset = ("DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "DJANGO_DEBUG": "False",
            "DJANGO_SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-4f9a8b7c",
            "FIELD_ENCRYPTION_KEYS": "a-separate-field-encryption-key-0f1e2d3c4b5a",
            "DJANGO_ALLOWED_HOSTS": "switchboard.example.com",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://switchboard.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_defaults_without_environment(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['ENGINE'], "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, "
        "s.CACHES['default']['BACKEND']]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DJANGO_SETTINGS_MODULE"] = "crm.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        '["django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer", true, '
        '"django.core.cache.backends.locmem.LocMemCache"]'
    )


def test_postgres_settings_use_the_pool_and_redis_layer_has_no_socket_timeout():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['OPTIONS'].get('pool'), "
        "s.DATABASES['default']['CONN_MAX_AGE'], s.CHANNEL_LAYERS['default']['CONFIG']['hosts']]))"
    )
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "crm.settings",
            "DATABASE_URL": "postgres://u@db:5432/switchboard",
            "REDIS_URL": "redis://cache:6379/0",
            "DB_POOL_MAX_SIZE": "33",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        '[{"min_size": 2, "max_size": 33, "timeout": 10.0}, 0, '
        '[{"address": "redis://cache:6379/0", "socket_timeout": null}]]'
    )


def test_login_is_rate_limited_per_address_and_username(client):
    import uuid

    from tests import factories

    # Unique names: the count lives in the shared cache (Redis), not in the test database.
    maria, alex = f"maria-{uuid.uuid4().hex}", f"alex-{uuid.uuid4().hex}"
    factories.UserFactory(username=maria)
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": maria, "password": "wrong"})
        assert response.status_code == 200
    blocked = client.post("/accounts/login/", {"username": maria, "password": "switchboard"})
    assert blocked.status_code == 429
    assert b"Too many failed sign-ins" in blocked.content
    # Another username from the same address is not locked out.
    factories.UserFactory(username=alex)
    signed_in = client.post("/accounts/login/", {"username": alex, "password": "switchboard"})
    assert signed_in.status_code == 302


def test_old_realtime_events_are_pruned_and_recent_ones_kept(settings):
    from datetime import timedelta

    from django.utils import timezone

    from communications.models import RealtimeEvent
    from communications.tasks import prune_realtime_events

    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "REALTIME_EVENT_RETENTION_HOURS": 72}
    old = [RealtimeEvent.objects.create(type="typing", payload={}) for _ in range(5)]
    RealtimeEvent.objects.filter(pk__in=[e.pk for e in old]).update(
        created_at=timezone.now() - timedelta(hours=73)
    )
    recent = RealtimeEvent.objects.create(type="typing", payload={})
    assert prune_realtime_events(batch_size=2) == 5
    assert list(RealtimeEvent.objects.values_list("pk", flat=True)) == [recent.pk]
