"""Atomic rate counters shared by every process, that degrade instead of failing.

A counter is a cache key that lives `seconds` from its first hit. `hit()` increments it and
returns the new value in one atomic step (Redis: SET NX EX + INCR in one MULTI/EXEC), so fifty
concurrent requests see fifty different values and exactly `limit` of them are admitted: no
read-then-write window.

When the shared cache cannot be reached (Redis down), counting falls back to this process's
own memory for a few seconds before Redis is tried again: limits then hold per process instead
of per deployment, and nothing that depends on a throttle fails because Redis did.
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache

try:
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - redis is a requirement, but the cache may be LocMem
    RedisError = OSError

logger = logging.getLogger(__name__)

PREFIX = "throttle"
# After a failed call to the shared cache, skip it this long: a dead Redis then costs nothing
# per request instead of a connection attempt each.
SHARED_RETRY_SECONDS = 5.0
UNREACHABLE = (RedisError, OSError)

_REFUND_SCRIPT = """
if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """'600/minute', '50/s', '10/300s' (per 300 seconds)."""
        count, _, period = text.strip().partition("/")
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        period = period.strip().lower()
        if period[:-1].isdigit() and period.endswith("s"):
            seconds = int(period[:-1])
        else:
            seconds = units.get(period[:1], 0)
        if not count.strip().isdigit() or seconds <= 0:
            raise ValueError(f"not a rate: {text!r} (expected e.g. '600/minute')")
        return cls(int(count), seconds)


class _LocalCounters:
    """This process's fallback counters (used only while the shared cache is unreachable)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def hit(self, key: str, seconds: int, amount: int = 1) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, now + seconds))
            if expires <= now:
                count, expires = 0, now + seconds
            count = max(count + amount, 0)
            self._counts[key] = (count, expires)
            return count

    def peek(self, key: str) -> int:
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            return count if expires > time.monotonic() else 0

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


_local = _LocalCounters()
_shared_down_until = 0.0


def _shared_available() -> bool:
    return time.monotonic() >= _shared_down_until


def _mark_shared_down(error: Exception) -> None:
    global _shared_down_until
    if _shared_available():
        logger.warning(
            "rate counters fall back to this process: shared cache unreachable (%s)", error
        )
    _shared_down_until = time.monotonic() + SHARED_RETRY_SECONDS


def _is_redis() -> bool:
    """`cache` is a proxy: isinstance() must look at the backend it stands for (checking the
    proxy itself was always False, so every count took the slower add+incr path)."""
    return isinstance(caches[DEFAULT_CACHE_ALIAS], RedisCache)


def _redis(key: str):
    """The raw client and the full key (prefix, version) the cache would use for `key`.
    Django's RedisCache has no atomic "increment or create with expiry"; its client does."""
    full = cache.make_key(key)
    return cache._cache.get_client(full, write=True), full


def hit(name: str, seconds: int, amount: int = 1) -> int:
    """Count `amount` more events for `name` in its window; returns the count including them
    (a batch of n takes the numbers count-n+1 … count)."""
    key = f"{PREFIX}:{name}"
    if _shared_available():
        try:
            if _is_redis():
                client, full = _redis(key)
                pipe = client.pipeline(transaction=True)
                pipe.set(full, 0, ex=seconds, nx=True)
                pipe.incrby(full, amount)
                return int(pipe.execute()[1])
            # Any other Django cache (LocMem in the embedded mode): add + incr, atomic there.
            while True:
                if cache.add(key, amount, timeout=seconds):
                    return amount
                try:
                    return cache.incr(key, amount)
                except ValueError:  # expired between add and incr: start a new window
                    continue
        except UNREACHABLE as error:
            _mark_shared_down(error)
    return _local.hit(key, seconds, amount)


def peek(name: str) -> int:
    """The current count for `name` (0 when none), without counting."""
    key = f"{PREFIX}:{name}"
    if _shared_available():
        try:
            if _is_redis():
                client, full = _redis(key)
                value = client.get(full)
            else:
                value = cache.get(key)
            return int(value or 0)
        except UNREACHABLE as error:
            _mark_shared_down(error)
    return _local.peek(key)


def refund(name: str) -> None:
    """Take back one count (an attempt that turned out legitimate); never creates a key."""
    key = f"{PREFIX}:{name}"
    if _shared_available():
        try:
            if _is_redis():
                client, full = _redis(key)
                client.eval(_REFUND_SCRIPT, 1, full)
            else:
                try:
                    cache.decr(key)
                except ValueError:
                    pass
            return
        except UNREACHABLE as error:
            _mark_shared_down(error)
    if _local.peek(key):
        _local.hit(key, 1, amount=-1)


def reset(name: str) -> None:
    key = f"{PREFIX}:{name}"
    _local.delete(key)
    if _shared_available():
        try:
            if _is_redis():
                client, full = _redis(key)
                client.delete(full)
            else:
                cache.delete(key)
        except UNREACHABLE as error:
            _mark_shared_down(error)
