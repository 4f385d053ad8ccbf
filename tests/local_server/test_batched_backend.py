"""BatchedBackend (endpoint_server's DynamicBatcher as a Backend): merging, ordering, limits, errors, shutdown.

The backend here is a real implementation of the Backend protocol whose vectors are a pure function of
the input, so every request can check it got *its own* rows; a gate holds the first model call so the
following requests pile up deterministically: whatever is queued when a batch is collected joins it,
however short the wait window, so no timing decides the outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local_server.batched_backend import BatchedBackend
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import BackendUnavailableError, ModelError, UnprocessableError
from tests.helpers.waiting import wait_for


def text_vector(text: str, normalize: bool) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 997), 1.0 if normalize else -1.0]


def image_vector(image: bytes, normalize: bool) -> list[float]:
    return [float(len(image)), float(sum(image) % 997), 1.0 if normalize else -1.0]


class RecordingBackend:
    """Embeds deterministically, records each call's items, fails on items named "bad", can hold its first call."""

    model_id = "recording"
    service = SERVICE_LOCAL

    def __init__(self, *, hold_first: bool = False, short_by_one: bool = False) -> None:
        self.calls: list[tuple[str, list[Any], bool]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self._hold = hold_first
        self._short = short_by_one

    def _embed(
        self, kind: str, items: Sequence[Any], normalize: bool, fn: Callable[[Any, bool], list[float]]
    ) -> Embeddings:
        self.calls.append((kind, list(items), normalize))
        if self._hold:
            self._hold = False
            self.entered.set()
            assert self.release.wait(10)
        if any(item in ("bad", b"bad") for item in items):
            raise UnprocessableError("a bad item", code="bad_item")
        vectors = [fn(item, normalize) for item in items][: len(items) - self._short]
        flags = [len(item) > 5 for item in items][: len(vectors)] if kind == "texts" else None
        tokens = [len(item) for item in items][: len(vectors)] if kind == "texts" else None
        return Embeddings(vectors, self.model_id, self.service, 3, truncated=flags, tokens=tokens)

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return self._embed("texts", texts, normalize, text_vector)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self._embed("images", images, normalize, image_vector)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model_id}


def _pile_up(batcher: BatchedBackend, backend: RecordingBackend, submit: Callable[[Any], Any], inputs: list[Any]):
    """Hold the model on a first request, queue ``inputs`` behind it, release; returns futures for inputs."""
    pool = ThreadPoolExecutor(max_workers=len(inputs) + 1)
    first = pool.submit(submit, "first")
    assert backend.entered.wait(10)
    futures = [pool.submit(submit, value) for value in inputs]
    wait_for(lambda: batcher.stats.requests == len(inputs) + 1)
    backend.release.set()
    pool.shutdown(wait=False)
    return first, futures


def test_is_a_backend_and_reports_batching_in_health() -> None:
    with BatchedBackend(RecordingBackend()) as batcher:
        assert isinstance(batcher, Backend)
        assert batcher.model_id == "recording" and batcher.service == SERVICE_LOCAL
        health = batcher.health()
        assert health["status"] == "ok" and health["batching"]["max_batch_size"] == 32


def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows_in_order() -> None:
    backend = RecordingBackend(hold_first=True)
    inputs = [[f"text {i}", "x" * i, f"{i}!"][: 1 + i % 3] for i in range(12)]
    with BatchedBackend(backend, max_batch_size=64, max_wait_ms=20) as batcher:
        first, futures = _pile_up(
            batcher, backend, lambda v: batcher.embed_texts([v] if isinstance(v, str) else v), inputs
        )
        assert first.result(10).vectors == [text_vector("first", True)]
        for texts, future in zip(inputs, futures, strict=True):
            result = future.result(10)
            assert result.vectors == [text_vector(t, True) for t in texts]
            assert result.truncated == [len(t) > 5 for t in texts]
            assert result.tokens == [len(t) for t in texts]
            assert result.model == "recording" and result.dimension == 3
    assert len(backend.calls) == 2  # the held call, then everything that queued behind it
    assert sorted(backend.calls[1][1]) == sorted(t for texts in inputs for t in texts)
    assert batcher.stats.merged_calls == 1


def test_batches_never_exceed_max_batch_size() -> None:
    backend = RecordingBackend(hold_first=True)
    inputs = [f"t{i}" for i in range(10)]
    with BatchedBackend(backend, max_batch_size=4, max_wait_ms=20) as batcher:
        _, futures = _pile_up(batcher, backend, lambda v: batcher.embed_texts([v]), inputs)
        assert [f.result(10).vectors for f in futures] == [[text_vector(t, True)] for t in inputs]
    assert [len(items) for _, items, _ in backend.calls] == [1, 4, 4, 2]


def test_a_bad_item_fails_only_its_own_request() -> None:
    backend = RecordingBackend(hold_first=True)
    inputs = ["good one", "bad", "good two", "good three"]
    with BatchedBackend(backend, max_wait_ms=20) as batcher:
        _, futures = _pile_up(batcher, backend, lambda v: batcher.embed_texts([v]), inputs)
        for text, future in zip(inputs, futures, strict=True):
            if text == "bad":
                with pytest.raises(UnprocessableError) as caught:
                    future.result(10)
                assert caught.value.code == "bad_item"
            else:
                assert future.result(10).vectors == [text_vector(text, True)]
        assert batcher.stats.isolated_retries == len(inputs)
        # the batcher keeps serving after the failure
        assert batcher.embed_texts(["after"]).vectors == [text_vector("after", True)]


def test_normalize_and_kinds_are_never_mixed_in_one_call() -> None:
    backend = RecordingBackend(hold_first=True)
    inputs: list[tuple[str, Any, bool]] = [
        ("texts", "a", True), ("texts", "b", False), ("images", b"img1", True), ("texts", "c", True),
        ("images", b"img22", False), ("texts", "d", False),
    ]  # fmt: skip

    def submit(value: Any) -> Embeddings:
        if value == "first":
            return batcher.embed_texts(["first"])
        kind, item, normalize = value
        call = batcher.embed_texts if kind == "texts" else batcher.embed_images
        return call([item], normalize=normalize)

    with BatchedBackend(backend, max_wait_ms=20) as batcher:
        _, futures = _pile_up(batcher, backend, submit, inputs)
        for (kind, item, normalize), future in zip(inputs, futures, strict=True):
            fn = text_vector if kind == "texts" else image_vector
            assert future.result(10).vectors == [fn(item, normalize)]
    for kind, items, normalize in backend.calls:
        for item in items:
            assert (kind, item, normalize) in inputs or item == "first"
    # texts: held call, the normalize=True group, the normalize=False group; images likewise in their own lane
    assert sorted((k, n, len(i)) for k, i, n in backend.calls[1:]) == [
        ("images", False, 1), ("images", True, 1), ("texts", False, 2), ("texts", True, 2),
    ]  # fmt: skip


def test_a_backend_returning_too_few_rows_is_a_model_error() -> None:
    with BatchedBackend(RecordingBackend(short_by_one=True)) as batcher, pytest.raises(ModelError) as caught:
        batcher.embed_texts(["one", "two"])
    assert caught.value.code == "bad_model_response"


def test_empty_input_goes_straight_to_the_backend() -> None:
    backend = RecordingBackend()
    with BatchedBackend(backend) as batcher:
        assert batcher.embed_texts([]).vectors == []
    assert backend.calls == [("texts", [], True)]
    assert batcher.stats.requests == 0


def test_close_serves_what_is_queued_then_refuses() -> None:
    backend = RecordingBackend(hold_first=True)
    batcher = BatchedBackend(backend, max_wait_ms=20)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batcher.embed_texts, ["first"])
        assert backend.entered.wait(10)
        queued = [pool.submit(batcher.embed_texts, [f"q{i}"]) for i in range(3)]
        wait_for(lambda: batcher.stats.requests == 4)
        closer = pool.submit(batcher.close)
        backend.release.set()
        closer.result(10)
        assert first.result(10).vectors == [text_vector("first", True)]
        assert [f.result(10).vectors for f in queued] == [[text_vector(f"q{i}", True)] for i in range(3)]
    with pytest.raises(BackendUnavailableError) as caught:
        batcher.embed_texts(["late"])
    assert caught.value.code == "shutting_down"
    assert not any(lane._thread.is_alive() for lane in batcher._lanes.values())
    batcher.close()  # idempotent


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        BatchedBackend(RecordingBackend(), max_batch_size=0)
    with pytest.raises(ValueError):
        BatchedBackend(RecordingBackend(), max_wait_ms=-1)
