"""DynamicBatcher on its own: merging, keys, sizes, the bounded queue, retries alone, stop, cancelled callers.

A gate holds the batch function's first call, so the following items pile up deterministically: whatever
is queued when the next batch is collected joins it, however short the wait window: no timing decides.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from endpoint_server.batching import DynamicBatcher, Overloaded, ShuttingDown
from tests.helpers.waiting import wait_for


class Doubler:
    """``list[int] -> list[int]`` (each doubled); records calls, holds the first one, fails on negatives."""

    def __init__(self, *, hold_first: bool = True, short: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self._hold, self._short = hold_first, short

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if self._hold:
            self._hold = False
            self.entered.set()
            assert self.release.wait(10)
        if any(i < 0 for i in items):
            raise ValueError(f"negative in {items}")
        return [2 * i for i in items][: len(items) - self._short]


def _held(batcher: DynamicBatcher[int, int], fn: Doubler) -> Future[int]:
    first = batcher.submit(1000)
    assert fn.entered.wait(10)
    return first


def test_queued_items_share_one_call_and_get_their_own_results() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_batch_size=64, max_wait_ms=20) as batcher:
        first = _held(batcher, fn)
        futures = [batcher.submit(i) for i in range(10)]
        assert not any(f.done() for f in futures)  # nothing finishes while the model is held
        fn.release.set()
        assert first.result(10) == 2000 and [f.result(10) for f in futures] == [2 * i for i in range(10)]
    assert fn.calls == [[1000], list(range(10))]
    assert batcher.stats.merged_calls == 1 and batcher.stats.largest_batch == 10


def test_batches_respect_max_batch_size_by_item_size() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_batch_size=5, max_wait_ms=20, size=lambda i: i) as batcher:
        _held(batcher, fn)
        futures = [batcher.submit(i) for i in (2, 3, 1, 4, 9)]  # 9 alone is bigger than a batch: served alone
        fn.release.set()
        assert [f.result(10) for f in futures] == [4, 6, 2, 8, 18]
    assert fn.calls[1:] == [[2, 3], [1, 4], [9]]


def test_different_keys_never_share_a_call_and_keep_their_order() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_wait_ms=20, key=lambda i: i % 2) as batcher:
        _held(batcher, fn)
        futures = [batcher.submit(i) for i in (1, 2, 3, 4, 5)]
        fn.release.set()
        assert [f.result(10) for f in futures] == [2, 4, 6, 8, 10]
    assert fn.calls[1:] == [[1, 3, 5], [2, 4]]


def test_a_failed_merged_call_retries_each_item_alone() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_wait_ms=20) as batcher:
        _held(batcher, fn)
        futures = [batcher.submit(i) for i in (1, -1, 3)]
        fn.release.set()
        assert futures[0].result(10) == 2 and futures[2].result(10) == 6
        with pytest.raises(ValueError, match="negative"):
            futures[1].result(10)
        assert batcher.submit(7).result(10) == 14  # still serving
    assert fn.calls[1:5] == [[1, -1, 3], [1], [-1], [3]] and batcher.stats.isolated_retries == 3


def test_a_wrong_result_count_fails_the_call() -> None:
    with (
        DynamicBatcher(Doubler(hold_first=False, short=True)) as batcher,
        pytest.raises(RuntimeError, match="0 results"),
    ):
        batcher.submit(1).result(10)


def test_the_queue_is_bounded() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_queue=2, max_wait_ms=20) as batcher:
        _held(batcher, fn)
        queued = [batcher.submit(1), batcher.submit(2)]
        with pytest.raises(Overloaded, match="limit 2"):
            batcher.submit(3)
        assert batcher.stats.rejected == 1
        fn.release.set()
        assert [f.result(10) for f in queued] == [2, 4]
        assert batcher.submit(3).result(10) == 6  # room again


def test_stop_serves_what_is_queued_then_refuses() -> None:
    fn = Doubler()
    batcher = DynamicBatcher(fn, max_wait_ms=20).start()
    first = _held(batcher, fn)
    queued = [batcher.submit(i) for i in range(3)]
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    wait_for(lambda: not batcher.running)
    with pytest.raises(ShuttingDown):
        batcher.submit(9)
    fn.release.set()
    stopper.join(10)
    assert first.result(10) == 2000 and [f.result(10) for f in queued] == [0, 2, 4]
    batcher.stop()  # idempotent


def test_stop_fails_what_it_could_not_serve_in_time() -> None:
    fn = Doubler()
    batcher = DynamicBatcher(fn, max_wait_ms=20).start()
    first = _held(batcher, fn)
    queued = [batcher.submit(i) for i in range(3)]
    batcher.stop(timeout=0)  # the model is still held: nothing queued can be served
    for future in queued:
        with pytest.raises(ShuttingDown):
            future.result(10)
    fn.release.set()
    assert first.result(10) == 2000  # the running call still finishes


def test_cancelled_callers_are_dropped_before_the_call() -> None:
    fn = Doubler()
    with DynamicBatcher(fn, max_wait_ms=20) as batcher:
        _held(batcher, fn)
        keep, gone = batcher.submit(1), batcher.submit(2)
        assert gone.cancel()
        fn.release.set()
        assert keep.result(10) == 2
    assert fn.calls[1] == [1]


def test_submit_needs_start_and_limits_are_checked() -> None:
    with pytest.raises(ShuttingDown):
        DynamicBatcher(Doubler()).submit(1)
    for bad in ({"max_batch_size": 0}, {"max_wait_ms": -1}, {"max_queue": 0}):
        with pytest.raises(ValueError):
            DynamicBatcher(Doubler(), **bad)


def test_a_lone_item_does_not_wait_out_the_window_when_nothing_else_is_coming() -> None:
    coming = [1]
    asked = threading.Event()  # the batcher has seen that one more is coming (and waits under its lock)

    def expected() -> int:
        if coming[0]:
            asked.set()
        return coming[0]

    fn = Doubler(hold_first=False)
    with DynamicBatcher(fn, max_wait_ms=60_000, expected=expected) as batcher:
        waiting = batcher.submit(1)  # one more is announced: the batch waits for it
        assert asked.wait(10)
        assert not waiting.done()
        coming[0] = 0
        second = batcher.submit(2)  # it arrives; nothing else is coming: both go at once
        assert (waiting.result(10), second.result(10)) == (2, 4)
        assert batcher.submit(3).result(10) == 6  # alone, with nothing coming: no 60 s wait
    assert fn.calls == [[1, 2], [3]]


def test_a_lone_caller_pays_no_wait_window_and_concurrent_callers_do() -> None:
    fn = Doubler(hold_first=False)
    # a window far longer than any result timeout below: only skipping it lets a lone item through in time
    with DynamicBatcher(fn, max_batch_size=64, max_wait_ms=60_000) as batcher:
        assert batcher.submit(1).result(10) == 2  # idle batcher, one caller: sent at once
        assert batcher.submit(2).result(10) == 4  # still a lone caller
        fn._hold = True  # the next call is held, so the items after it queue behind the busy function
        held = batcher.submit(3)
        assert fn.entered.wait(10)
        queued = [batcher.submit(i) for i in (4, 5)]
        fn.release.set()
        # the round after the held one merges what queued behind it, then the window applies: a new item
        # waits for company (it is not done while the window is open) until the batch fills up
        assert held.result(10) == 6 and [f.result(10) for f in queued] == [8, 10]
        waiting = batcher.submit(6)
        time.sleep(0.2)
        assert not waiting.done()
        batcher.max_batch_size = 2
        batcher.submit(7)
        assert waiting.result(10) == 12
    assert fn.calls[:4] == [[1], [2], [3], [4, 5]]
