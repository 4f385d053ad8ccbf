"""BatchedBackend: a :class:`Backend` whose concurrent calls meet in fewer calls on the backend it wraps.

A CLIP forward pass on 16 texts costs little more than on one. The batching itself is endpoint_server's
DynamicBatcher (the serving container's, so there is one batcher in the repository): one per input kind,
so texts and images never share a call, keyed by ``normalize``, sized by items per request. This module
only adapts it to the Backend protocol: the merged call (endpoint_server.merging, the container's too), and
the batcher's refusals as the core's errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from endpoint_server.batching import BatchStats, DynamicBatcher, Overloaded, ShuttingDown
from endpoint_server.merging import WrongCount, call_merged
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import BackendUnavailableError, ModelError

_Call = tuple[list[Any], bool]  # (items, normalize): one request


class BatchedBackend:
    """Thread-safe; callers block until their own rows are ready. ``close()`` serves what is queued, then stops."""

    def __init__(
        self, backend: Backend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 4096
    ) -> None:
        self.backend = backend
        self._lanes = {
            kind: DynamicBatcher(
                self._merged(kind, call),
                max_batch_size=max_batch_size,
                max_wait_ms=max_wait_ms,
                max_queue=max_queue,
                key=lambda request: request[1],
                size=lambda request: len(request[0]),
                name=f"batcher-{kind}",
            ).start()
            for kind, call in (("texts", backend.embed_texts), ("images", backend.embed_images))
        }
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def service(self) -> str:
        return self.backend.service

    @property
    def stats(self) -> BatchStats:
        """Both lanes' counters added up (largest batch: the larger)."""
        texts, images = (lane.stats for lane in self._lanes.values())
        total = {f.name: getattr(texts, f.name) + getattr(images, f.name) for f in dataclasses.fields(BatchStats)}
        total["largest_batch"] = max(texts.largest_batch, images.largest_batch)
        return BatchStats(**total)

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return self._submit("texts", list(texts), normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self._submit("images", list(images), normalize)

    def health(self) -> dict[str, Any]:
        report = dict(self.backend.health())
        counters = dataclasses.asdict(self.stats)
        report["batching"] = {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_s * 1000, **counters}
        return report

    def close(self, timeout: float = 30.0) -> None:
        """Serve what is queued, then stop the lane threads (idempotent)."""
        for lane in self._lanes.values():
            lane.stop(timeout)

    def __enter__(self) -> BatchedBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, kind: str, items: list[Any], normalize: bool) -> Embeddings:
        if not items:  # nothing to merge; let the backend give its own answer to an empty batch
            call = self.backend.embed_texts if kind == "texts" else self.backend.embed_images
            return call(items, normalize=normalize)
        try:
            future = self._lanes[kind].submit((items, normalize))
        except ShuttingDown as e:
            raise BackendUnavailableError("the server is shutting down", code="shutting_down") from e
        except Overloaded as e:
            raise BackendUnavailableError(f"the server is overloaded; retry shortly ({e})", code="overloaded") from e
        try:
            return future.result()
        except ShuttingDown as e:
            raise BackendUnavailableError("the server stopped before serving this request", code="shutting_down") from e

    @staticmethod
    def _merged(kind: str, call: Callable[..., Embeddings]) -> Callable[[list[_Call]], list[Embeddings]]:
        def run(requests: list[_Call]) -> list[Embeddings]:
            try:
                return call_merged(
                    [items for items, _ in requests],
                    lambda items: call(items, normalize=requests[0][1]),
                    changes=lambda merged, _i: {"meta": dict(merged.meta)},  # each answer its own meta
                )
            except WrongCount as e:
                message = f"the backend returned {e.got} vectors for {e.want} {kind}"
                raise ModelError(message, code="bad_model_response") from e

        return run
