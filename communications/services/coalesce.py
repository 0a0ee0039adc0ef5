"""Concurrent single calls of one process, run together as batches (group commit).

A webhook flood is many concurrent requests carrying one message each. Stored one by one,
every message pays the ingest's fixed statements and a commit of its own; run together, a
hundred pay them once. The first caller for a key becomes the leader and runs every call
waiting for that key as one batch; calls arriving meanwhile queue up, and when the batch is
done the first of them leads the next one. Nothing waits on a timer: a lone call is a batch
of one, with the latency it always had.
"""

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Call:
    __slots__ = ("target", "item", "done", "leads", "result", "failed")

    def __init__(self, target, item):
        self.target = target
        self.item = item
        self.done = threading.Event()
        self.leads = False
        self.result = None
        self.failed = False


class Coalescer:
    def __init__(
        self,
        run_batch: Callable[[Any, list], list],
        max_batch: int = 100,
        before_waiting: Callable[[], None] = lambda: None,
    ):
        """`run_batch(target, items)` returns one result per item, in order. A caller whose item
        another caller's batch will carry runs `before_waiting` first (to give back what it
        holds and does not need while it waits: its database connection)."""
        self.run_batch = run_batch
        self.before_waiting = before_waiting
        self.max_batch = max_batch
        self.lock = threading.Lock()
        self.waiting: dict[Hashable, list[_Call]] = {}
        self.leading: set[Hashable] = set()

    def call(self, key: Hashable, target, item):
        me = _Call(target, item)
        with self.lock:
            self.waiting.setdefault(key, []).append(me)
            if key in self.leading:
                follower = True
            else:
                self.leading.add(key)
                follower = False
        if follower:
            self.before_waiting()
            me.done.wait()
            if not me.leads:
                if me.failed:  # the batch failed as a whole: find out what is wrong with ours
                    return self.run_batch(target, [item])[0]
                return me.result
        with self.lock:
            queue = self.waiting[key]
            batch, queue[:] = queue[: self.max_batch], queue[self.max_batch :]
        try:
            results = self.run_batch(target, [call.item for call in batch])
        except Exception:
            for call in batch:
                call.failed = True
            if len(batch) == 1:
                raise
        else:
            for call, result in zip(batch, results, strict=True):
                call.result = result
        finally:
            self._hand_over(key)
            for call in batch:
                if call is not me:
                    call.done.set()
        if me.failed:
            return self.run_batch(target, [item])[0]
        return me.result

    def _hand_over(self, key: Hashable) -> None:
        """The first waiting call leads the next batch; with none waiting, nobody leads."""
        with self.lock:
            queue = self.waiting.get(key)
            if not queue:
                self.waiting.pop(key, None)
                self.leading.discard(key)
                return
            successor = queue[0]
            successor.leads = True
        successor.done.set()
