"""Dynamic batching: requests that arrive together share one model call.

A CLIP forward pass on 16 texts costs little more than on one, so concurrent single-item requests are
queued for at most ``max_wait_ms`` (counted from when each request arrived, so time spent queued behind
a busy model counts too), merged up to ``max_batch_size`` items, embedded in one backend call and split
back per request, in order. If a merged call fails, every request in it is retried alone, so one bad
image fails only the request that sent it.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import BackendUnavailableError, ModelError

_logger = logging.getLogger(__name__)

EmbedCall = Callable[..., Embeddings]


@dataclass(eq=False)
class _Request:
    items: list[Any]
    normalize: bool
    enqueued: float = field(default_factory=time.monotonic)
    future: Future[Embeddings] = field(default_factory=Future)


@dataclass
class _Stats:
    requests: int = 0
    items: int = 0
    backend_calls: int = 0
    merged_calls: int = 0
    largest_batch: int = 0
    isolated_retries: int = 0


class _Lane:
    """One queue and one thread per input kind (texts, images): the two never share a model call."""

    def __init__(self, name: str, call: EmbedCall, owner: DynamicBatcher) -> None:
        self.name = name
        self.call = call
        self.owner = owner
        self.queue: queue.Queue[_Request | None] = queue.Queue()
        self.backlog: deque[_Request] = deque()
        self.stopping = False
        self.expect_more = False  # the last round showed concurrent clients (see _collect)
        self.thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)

    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            self.owner._dispatch(self, batch)

    def _next(self, timeout: float | None) -> _Request | None:
        """The next request from the queue; ``None`` when none came in time or the batcher is stopping."""
        if self.stopping:
            return None
        try:
            request = self.queue.get(timeout=timeout) if timeout is None or timeout > 0 else self.queue.get_nowait()
        except queue.Empty:
            return None
        if request is None:
            self.stopping = True
        return request

    def _collect(self) -> list[_Request] | None:
        """Wait for a request, then gather compatible ones until the batch is full or the first one's wait ends.

        The wait applies only after a round that showed concurrent clients (requests queued behind the busy
        model, or merged): a lone client's request finds the lane idle and goes at once, with whatever else is
        already queued, instead of paying ``max_wait`` on every call.
        """
        queued = bool(self.backlog) or not self.queue.empty()
        first = self.backlog.popleft() if self.backlog else self._next(None)
        if first is None:
            return None  # stopping and nothing left: everything queued before close() has been served
        limit = self.owner.max_batch_size
        batch, size, kept = [first], len(first.items), deque[_Request]()
        for request in self.backlog:
            if request.normalize == first.normalize and size + len(request.items) <= limit:
                batch.append(request)
                size += len(request.items)
            else:
                kept.append(request)
        self.backlog = kept
        deadline = first.enqueued + (self.owner.max_wait_s if self.expect_more else 0.0)
        while size < limit and (request := self._next(deadline - time.monotonic())) is not None:
            if request.normalize == first.normalize and size + len(request.items) <= limit:
                batch.append(request)
                size += len(request.items)
            else:
                self.backlog.append(request)  # served first in the next round, so never starved
        self.expect_more = queued or len(batch) > 1
        return batch


class DynamicBatcher:
    """A :class:`Backend` that merges concurrent calls into fewer calls on the ``backend`` it wraps.

    Thread-safe; callers block until their own slice of the merged result is ready. ``close()`` serves
    everything already queued, then stops the batching threads; later calls raise ``BackendUnavailableError``.
    """

    def __init__(self, backend: Backend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must not be negative")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = _Stats()
        self._lock = threading.Lock()
        self._closed = False
        self._lanes = {
            "texts": _Lane("texts", backend.embed_texts, self),
            "images": _Lane("images", backend.embed_images, self),
        }
        for lane in self._lanes.values():
            lane.thread.start()

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def service(self) -> str:
        return self.backend.service

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return self._submit("texts", list(texts), normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self._submit("images", list(images), normalize)

    def health(self) -> dict[str, Any]:
        report = dict(self.backend.health())
        with self._lock:
            counters = dataclasses.asdict(self.stats)
        report["batching"] = {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_s * 1000, **counters}
        return report

    def close(self, timeout: float = 30.0) -> None:
        """Serve what is queued, then stop the lane threads (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for lane in self._lanes.values():
                    lane.queue.put(None)
        for lane in self._lanes.values():
            lane.thread.join(timeout)

    def __enter__(self) -> DynamicBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, kind: str, items: list[Any], normalize: bool) -> Embeddings:
        lane = self._lanes[kind]
        if not items:  # nothing to merge; let the backend give its own answer to an empty batch
            return lane.call(items, normalize=normalize)
        request = _Request(items, normalize)
        with self._lock:  # closed-check and put together, so nothing lands behind the stop marker
            if self._closed:
                raise BackendUnavailableError("the server is shutting down", code="shutting_down")
            self.stats.requests += 1  # the lock is already held
            self.stats.items += len(items)
            lane.queue.put(request)
        return request.future.result()

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def _call(self, lane: _Lane, items: list[Any], normalize: bool) -> Embeddings:
        self._count(backend_calls=1)
        result = lane.call(items, normalize=normalize)
        if result.count != len(items):
            raise ModelError(
                f"the backend returned {result.count} vectors for {len(items)} {lane.name}", code="bad_model_response"
            )
        return result

    def _dispatch(self, lane: _Lane, batch: list[_Request]) -> None:
        items = [item for request in batch for item in request.items]
        with self._lock:
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        self._count(merged_calls=int(len(batch) > 1))
        try:
            merged = self._call(lane, items, batch[0].normalize)
        except Exception as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            _logger.info("merged %s call of %d requests failed (%r); retrying each alone", lane.name, len(batch), e)
            for request in batch:
                self._serve_alone(lane, request)
            return
        start = 0
        for request in batch:
            stop = start + len(request.items)
            request.future.set_result(_slice(merged, start, stop))
            start = stop

    def _serve_alone(self, lane: _Lane, request: _Request) -> None:
        self._count(isolated_retries=1)
        try:
            request.future.set_result(self._call(lane, request.items, request.normalize))
        except Exception as e:
            request.future.set_exception(e)


def _slice(merged: Embeddings, start: int, stop: int) -> Embeddings:
    """Rows ``start:stop`` of a merged result, with their per-item flags."""
    return dataclasses.replace(
        merged,
        vectors=merged.vectors[start:stop],
        truncated=None if merged.truncated is None else merged.truncated[start:stop],
        tokens=None if merged.tokens is None else merged.tokens[start:stop],
        meta=dict(merged.meta),
    )
