"""The pieces under the brakes, in process: atomic counters on real Redis (and their fallback
when Redis cannot be reached), rate parsing, and which X-Forwarded-For is believed."""

import threading
import uuid

import pytest

from crm import throttle
from crm.proxy import TrustedProxyMiddleware
from tests.reliability import live


def test_rates_parse_and_a_bad_one_is_named():
    assert throttle.Rate.parse("600/minute") == throttle.Rate(600, 60)
    assert throttle.Rate.parse("50/s") == throttle.Rate(50, 1)
    assert throttle.Rate.parse("10/300s") == throttle.Rate(10, 300)
    assert throttle.Rate.parse("120000/hour") == throttle.Rate(120000, 3600)
    with pytest.raises(ValueError, match="'ten/minute'"):
        throttle.Rate.parse("ten/minute")


@pytest.mark.redis
def test_fifty_threads_get_fifty_different_counts_from_redis():
    name = "unit-" + uuid.uuid4().hex
    counts, barrier = [], threading.Barrier(50)

    def hit():
        barrier.wait()
        counts.append(throttle.hit(name, 60))

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 51))
    assert throttle.peek(name) == 50
    throttle.refund(name)
    assert throttle.peek(name) == 49
    throttle.reset(name)
    assert throttle.peek(name) == 0
    throttle.refund(name)  # never creates a key (nor a negative count)
    assert throttle.peek(name) == 0


def test_counters_fall_back_to_the_process_when_redis_is_unreachable(settings, tmp_path):
    redis = live.OwnRedis(tmp_path)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    name = "fallback-" + uuid.uuid4().hex
    try:
        assert [throttle.hit(name, 60) for _ in range(3)] == [1, 2, 3]
        redis.kill()
        # Not an error: counting goes on in this process, from zero.
        assert [throttle.hit(name, 60) for _ in range(2)] == [1, 2]
        assert throttle.peek(name) == 2
    finally:
        redis.kill()
        throttle._shared_down_until = 0.0


async def _scope_seen_by_app(client, headers, trusted, settings):
    settings.TRUSTED_PROXIES = trusted
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {"type": "http", "scheme": "http", "client": client, "headers": headers}
    await TrustedProxyMiddleware(app)(scope, None, None)
    return seen


async def test_forwarded_address_is_believed_only_from_a_trusted_proxy(settings):
    headers = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9"), (b"x-forwarded-proto", b"https")]
    from_proxy = await _scope_seen_by_app(["10.1.2.3", 5000], headers, ["10.0.0.0/8"], settings)
    # The rightmost entry is the one our proxy wrote; anything left of it is the client's word.
    assert from_proxy["client"] == ["203.0.113.9", 0]
    assert from_proxy["scheme"] == "https"
    direct = await _scope_seen_by_app(["198.51.100.7", 5000], headers, ["10.0.0.0/8"], settings)
    assert direct["client"] == ["198.51.100.7", 5000]
    assert direct["scheme"] == "http"
    garbage = [(b"x-forwarded-for", b"not-an-address")]
    kept = await _scope_seen_by_app(["127.0.0.1", 1], garbage, ["127.0.0.1"], settings)
    assert kept["client"] == ["127.0.0.1", 1]
