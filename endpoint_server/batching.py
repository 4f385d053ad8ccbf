"""Dynamic batching: concurrent requests meet in one call of a ``list[T] -> list[R]`` function.

Each caller submits one item and gets one :class:`~concurrent.futures.Future`; async callers await it with
``asyncio.wrap_future``, so results are set back on their event loop while the function runs on the
batcher's own thread (the model never runs on the loop). A batch is collected from the oldest waiting item:
it waits at most ``max_wait_ms`` counted from when that item arrived (time spent queued behind a busy
model counts too) and holds at most ``max_batch_size`` units (``size(item)``, 1 by default). Items whose
``key(item)`` differs never share a call; they stay queued in arrival order, so none is starved. With
``expected`` (how many items are on their way, e.g. requests still being decoded) a batch goes as soon
as nothing more is coming, instead of waiting out its window: a lone request pays no wait. Without it the
window applies only after a round that showed concurrent callers (items queued behind the busy function,
or a merged call): a lone caller finds the batcher idle and its item goes at once.

The queue is bounded: :meth:`submit` raises :class:`Overloaded` instead of growing a backlog. If a merged
call fails, each item in it is retried alone, so one bad item fails only its own caller. :meth:`stop`
refuses new work, serves what is queued until its timeout, then fails whatever is left with
:class:`ShuttingDown`: no future is left unresolved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_logger = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The queue is full: the caller should answer 429/503 and let the client retry."""


class ShuttingDown(RuntimeError):
    """The batcher is stopping (or stopped) and takes no new work."""


@dataclass
class BatchStats:
    requests: int = 0
    items: int = 0
    calls: int = 0
    merged_calls: int = 0
    largest_batch: int = 0
    isolated_retries: int = 0
    rejected: int = 0


@dataclass(eq=False)
class _Pending(Generic[T, R]):
    item: T
    key: Hashable
    size: int
    enqueued: float = field(default_factory=time.monotonic)
    future: Future[R] = field(default_factory=Future)


class DynamicBatcher(Generic[T, R]):
    """Merges concurrent :meth:`submit` calls into calls of ``fn`` on one thread of its own."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        key: Callable[[T], Hashable] | None = None,
        size: Callable[[T], int] | None = None,
        expected: Callable[[], int] | None = None,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must not be negative")
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue} must be at least 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.name = name
        self.stats = BatchStats()
        self._key = key or (lambda _item: None)
        self._size = size or (lambda _item: 1)
        self._expected = expected
        self._concurrent = False  # the last round showed concurrent callers (used without ``expected``)
        self._call_ended = float("-inf")  # when fn last returned: items enqueued before it waited behind it
        self._queue: deque[_Pending[T, R]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> DynamicBatcher[T, R]:
        """Start the batching thread (idempotent); returns self."""
        with self._cond:
            if self._stopping:
                raise ShuttingDown(f"{self.name} was stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new work, serve what is queued for up to ``timeout`` s, then fail the rest (idempotent)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        for pending in left:
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(ShuttingDown(f"{self.name} stopped before this request was served"))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def __enter__(self) -> DynamicBatcher[T, R]:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- callers --------------------------------------------------------------------------------------
    def submit(self, item: T) -> Future[R]:
        """Queue one item; its future gets the item's result or exception. Raises Overloaded / ShuttingDown."""
        pending: _Pending[T, R] = _Pending(item, self._key(item), max(1, self._size(item)))
        with self._cond:
            if self._stopping or self._thread is None:
                raise ShuttingDown(f"{self.name} is not accepting work")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise Overloaded(f"{self.name}: {len(self._queue)} requests already queued (limit {self.max_queue})")
            self.stats.requests += 1
            self.stats.items += pending.size
            self._queue.append(pending)
            self._cond.notify_all()
        return pending.future

    # -- the batching thread --------------------------------------------------------------------------
    def _select(self) -> tuple[list[_Pending[T, R]], int]:
        """The oldest item and the compatible ones after it that still fit, in arrival order."""
        first = self._queue[0]
        batch, total = [first], first.size
        for pending in list(self._queue)[1:]:
            if total >= self.max_batch_size:
                break
            if pending.key == first.key and total + pending.size <= self.max_batch_size:
                batch.append(pending)
                total += pending.size
        return batch, total

    def _collect(self) -> list[_Pending[T, R]] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            # arrived while fn was running (not after a caller got its result and sent the next one)
            queued_while_busy = self._queue[0].enqueued < self._call_ended
            window = self.max_wait_s if self._expected is not None or self._concurrent else 0.0
            deadline = self._queue[0].enqueued + window
            while True:
                batch, total = self._select()
                remaining = deadline - time.monotonic()
                if total >= self.max_batch_size or self._stopping or remaining <= 0:
                    break
                if self._expected is not None and self._expected() <= 0:
                    break  # nothing else on its way: waiting would only add latency
                self._cond.wait(remaining)
            self._concurrent = queued_while_busy or len(batch) > 1
            chosen = set(map(id, batch))
            self._queue = deque(p for p in self._queue if id(p) not in chosen)
            self.stats.largest_batch = max(self.stats.largest_batch, total)
            return batch

    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]  # callers gone: dropped
            if live:
                self._dispatch(live)

    def _call(self, items: list[T]) -> Sequence[R]:
        with self._cond:
            self.stats.calls += 1
        try:
            results = self.fn(items)
        finally:
            self._call_ended = time.monotonic()  # before any result is set, so the callers' next items come after
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: the batch function returned {len(results)} results for {len(items)}")
        return results

    def _dispatch(self, batch: list[_Pending[T, R]]) -> None:
        if len(batch) > 1:
            with self._cond:
                self.stats.merged_calls += 1
        try:
            results = self._call([p.item for p in batch])
        except Exception as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            _logger.info("%s: merged call of %d failed (%r); retrying each alone", self.name, len(batch), e)
            for pending in batch:
                self._alone(pending)
            return
        for pending, result in zip(batch, results, strict=True):
            pending.future.set_result(result)

    def _alone(self, pending: _Pending[T, R]) -> None:
        with self._cond:
            self.stats.isolated_retries += 1
        try:
            pending.future.set_result(self._call([pending.item])[0])
        except Exception as e:
            pending.future.set_exception(e)
