"""A manager's reply while the broker is down: stored and answered 201, shown as stuck on
/health/, and sent once by the sweeper when the broker is back.

The web process is compose's web command (uvicorn) on the test database whose Celery broker is a redis-server
this test starts and stops on a free port (the channel layer and cache stay on the shared
Redis: only the broker is down).
"""

import os
import socket
import subprocess

import pytest
import requests
from rest_framework.authtoken.models import Token

from communications.models import Message
from tests import factories
from tests.compose_commands import compose_command

from .conftest import ARTIFACTS, ROOT, WORKER_ENV, _database_url, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(transactional_db, own_redis, broker_queue):
    """The web server whose broker is `own_redis` (not started yet)."""
    port = free_port()
    env = {
        **os.environ,
        **WORKER_ENV,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": own_redis.url,
        "CELERY_QUEUE": broker_queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_DEBUG": "true",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "reliability-web.log", "w")
    process = subprocess.Popen(
        compose_command("web1", port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            assert process.poll() is None, f"the web server exited, see {log.name}"
            return False

    wait_until(listening, 30, "the web server to listen")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_a_reply_sent_while_the_broker_is_down_is_stored_answered_and_sent_later(
    web, own_redis, worker_factory, receiver, manager, channel
):
    channel.config = {"callback_url": receiver.url}
    channel.save()
    conversation = factories.ConversationFactory(channel=channel)
    token = Token.objects.create(user=manager)
    headers = {"Authorization": f"Token {token.key}"}

    response = requests.post(
        f"{web}/api/v1/conversations/{conversation.pk}/messages/",
        json={"client_id": "while-down", "content": "We are on it"},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == "pending"

    def health_counts_it():
        checks = requests.get(f"{web}/health/", timeout=30).json()["checks"]
        return checks["outbound"]["stuck_pending"] == 1

    wait_until(health_counts_it, 30, "/health/ to count the stuck reply")

    own_redis.start()
    worker_factory(broker_url=own_redis.url).start()  # its beat runs the sweep
    wait_until(lambda: receiver.counts() == {message.pk: 1}, 60, "the reply to be sent")
    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == "sent", 30, "the reply to be 'sent'"
    )
    checks = requests.get(f"{web}/health/", timeout=30).json()["checks"]
    assert checks["outbound"]["stuck"] == 0
    assert receiver.counts() == {message.pk: 1}
