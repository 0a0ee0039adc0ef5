"""Group commit of concurrent single calls: the logic, with a fake batch function."""

import threading
import time

import pytest

from communications.services.coalesce import Coalescer


def _concurrently(count: int, work) -> tuple[dict, dict]:
    barrier = threading.Barrier(count)
    results, errors = {}, {}

    def worker(index: int):
        barrier.wait(timeout=10)
        try:
            results[index] = work(index)
        except Exception as exc:  # collected and asserted by the tests
            errors[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


class Recorder:
    def __init__(self, first_batch_delay=0.2):
        self.batches = []
        self.first_batch_delay = first_batch_delay
        self.lock = threading.Lock()

    def __call__(self, target, items):
        with self.lock:
            self.batches.append(list(items))
            first = len(self.batches) == 1
        if first:
            time.sleep(self.first_batch_delay)
        if "boom" in items:
            raise ValueError("boom is not a message")
        return [f"{target}:{item}" for item in items]


def test_a_lone_call_is_a_batch_of_one():
    recorder = Recorder(first_batch_delay=0)
    coalescer = Coalescer(recorder)
    assert coalescer.call("k", "t", "a") == "t:a"
    assert coalescer.call("k", "t", "b") == "t:b"
    assert recorder.batches == [["a"], ["b"]]
    assert coalescer.waiting == {} and coalescer.leading == set()


def test_concurrent_calls_share_batches_and_each_gets_its_own_result():
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=8)
    results, errors = _concurrently(20, lambda i: coalescer.call("k", "t", i))
    assert errors == {}
    assert results == {i: f"t:{i}" for i in range(20)}
    assert sorted(item for batch in recorder.batches for item in batch) == list(range(20))
    assert max(len(batch) for batch in recorder.batches) <= 8
    assert len(recorder.batches) < 20
    assert coalescer.waiting == {} and coalescer.leading == set()


def test_different_keys_do_not_wait_for_each_other():
    recorder = Recorder(first_batch_delay=0.5)
    coalescer = Coalescer(recorder)
    started = threading.Event()
    slow = threading.Thread(target=lambda: (started.set(), coalescer.call("a", "t", "slow")))
    slow.start()
    started.wait()
    time.sleep(0.05)
    assert coalescer.call("b", "t", "fast") == "t:fast"
    assert slow.is_alive()  # "b" did not queue behind the batch of "a"
    slow.join()


def test_a_failing_item_fails_only_its_own_call():
    recorder = Recorder()
    coalescer = Coalescer(recorder)
    items = ["x0", "x1", "boom", "x3", "x4", "x5"]
    results, errors = _concurrently(len(items), lambda i: coalescer.call("k", "t", items[i]))
    assert list(errors) == [2] and isinstance(errors[2], ValueError)
    assert results == {i: f"t:{item}" for i, item in enumerate(items) if item != "boom"}
    assert coalescer.waiting == {} and coalescer.leading == set()


def test_a_lone_failing_call_raises_once():
    recorder = Recorder(first_batch_delay=0)
    coalescer = Coalescer(recorder)
    with pytest.raises(ValueError):
        coalescer.call("k", "t", "boom")
    assert recorder.batches == [["boom"]]
    assert coalescer.call("k", "t", "ok") == "t:ok"


def test_only_callers_that_wait_for_another_batch_run_before_waiting():
    waited = []

    def note_waiting():
        waited.append(threading.get_ident())

    lone = Coalescer(Recorder(first_batch_delay=0), before_waiting=note_waiting)
    assert lone.call("k", "t", "alone") == "t:alone"
    assert waited == []  # a lone call leads its own batch: nothing to wait for

    coalescer = Coalescer(Recorder(), before_waiting=note_waiting)
    results, errors = _concurrently(
        10, lambda i: (threading.get_ident(), coalescer.call("k", "t", i))
    )
    assert errors == {}
    assert sorted(result for _, result in results.values()) == sorted(f"t:{i}" for i in range(10))
    # The first caller leads while the others queue up: they, and only they, waited.
    assert len(waited) == len(set(waited)) == 9
    assert len({ident for ident, _ in results.values()} - set(waited)) == 1
