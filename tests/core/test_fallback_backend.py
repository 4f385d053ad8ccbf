"""FallbackBackend: which failures fall back, the circuit's states on a fake clock, same-model rule, threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.embeddings import SERVICE_LOCAL, SERVICE_SAGEMAKER, Embeddings
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    EmbedError,
    InvalidInputError,
    ModelError,
    PayloadTooLargeError,
    ThrottledError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

MODEL = "tiny-shapes"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedBackend:
    """A Backend whose answers are scripted: ``fail`` is an error to raise (or a callable deciding per call)."""

    def __init__(self, service: str, *, model_id: str = MODEL, fail: EmbedError | Exception | None = None) -> None:
        self.model_id = model_id
        self.service = service
        self.fail = fail
        self.calls: list[tuple[str, list]] = []
        self.before: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def _answer(self, method: str, items: Sequence[Any], normalize: bool) -> Embeddings:
        with self._lock:
            self.calls.append((method, list(items)))
        if self.before is not None:
            self.before()
        if self.fail is not None:
            raise self.fail
        return Embeddings([[float(len(items)), 1.0]] * len(items), self.model_id, self.service, 2, meta={"n": 1})

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return self._answer("embed_texts", texts, normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self._answer("embed_images", images, normalize)

    def health(self) -> dict[str, Any]:
        if isinstance(self.fail, EmbedError):
            raise self.fail
        return {"status": "ok", "service": self.service, "model": self.model_id}


Pair = tuple[FallbackBackend, ScriptedBackend, ScriptedBackend, Clock]


def _pair(threshold: int = 3, cooldown: float = 30.0) -> Pair:
    clock = Clock()
    primary, secondary = ScriptedBackend(SERVICE_SAGEMAKER), ScriptedBackend(SERVICE_LOCAL)
    backend = FallbackBackend(primary, secondary, failure_threshold=threshold, cooldown_seconds=cooldown, clock=clock)
    return backend, primary, secondary, clock


def test_refuses_a_fallback_serving_another_model() -> None:
    with pytest.raises(ConfigError) as info:
        FallbackBackend(ScriptedBackend(SERVICE_SAGEMAKER, model_id="ViT-B-32/openai"), ScriptedBackend(SERVICE_LOCAL))
    assert "'tiny-shapes'" in str(info.value) and "'ViT-B-32/openai'" in str(info.value)


def test_a_healthy_primary_answers_untouched() -> None:
    backend, _, secondary, _ = _pair()
    result = backend.embed_images([b"png"], normalize=False)
    assert (result.service, result.meta) == (SERVICE_SAGEMAKER, {"n": 1})
    assert secondary.calls == []
    assert backend.health()["status"] == "ok"


@pytest.mark.parametrize(
    "error",
    [
        ThrottledError("slow down"),
        ModelError("container crashed"),
        BackendUnavailableError("gone", code="endpoint_not_found"),
        BackendTimeoutError("too slow"),
        EmbedError("unexpected"),  # base class: 500
    ],
)
def test_the_backends_own_faults_fall_back(error: EmbedError) -> None:
    backend, primary, secondary, _ = _pair()
    primary.fail = error
    result = backend.embed_texts(["a", "b"])
    assert result.service == SERVICE_LOCAL
    assert result.meta == {"n": 1, "fallback": True, "fallback_reason": error.code}
    assert secondary.calls == [("embed_texts", ["a", "b"])]
    assert backend.circuit.snapshot()["consecutive_failures"] == 1


@pytest.mark.parametrize(
    "error",
    [
        InvalidInputError("empty"),
        PayloadTooLargeError("big", code="item_exceeds_invoke_limit"),
        UnsupportedMediaTypeError("tiff"),
        UnprocessableError("corrupt"),
    ],
)
def test_the_callers_errors_do_not_fall_back(error: EmbedError) -> None:
    backend, primary, secondary, _ = _pair(threshold=1)
    primary.fail = error
    with pytest.raises(type(error)) as info:
        backend.embed_texts(["a"])
    assert info.value is error
    assert secondary.calls == []
    assert backend.circuit.snapshot()["consecutive_failures"] == 0
    assert backend.circuit.state == "closed"


def test_the_circuit_opens_after_consecutive_failures_and_skips_the_primary() -> None:
    backend, primary, secondary, clock = _pair(threshold=3, cooldown=30)
    primary.fail = BackendTimeoutError("too slow")
    for _ in range(3):
        backend.embed_texts(["a"])
    assert backend.circuit.state == "open"
    clock.now += 29.9
    result = backend.embed_texts(["b"])
    assert result.meta["fallback_reason"] == "circuit_open"
    assert len(primary.calls) == 3 and len(secondary.calls) == 4
    health = backend.health()
    assert (health["status"], health["circuit"]["state"], health["model"]) == ("degraded", "open", MODEL)


def test_a_success_resets_the_count() -> None:
    backend, primary, _, _ = _pair(threshold=3)
    for fail in (True, True, False, True, True):
        primary.fail = ModelError("boom") if fail else None
        backend.embed_texts(["a"])
    assert backend.circuit.state == "closed"
    assert backend.circuit.snapshot()["consecutive_failures"] == 2


def test_after_the_cooldown_one_trial_success_closes_the_circuit() -> None:
    backend, primary, _, clock = _pair(threshold=1, cooldown=30)
    primary.fail = BackendUnavailableError("down")
    backend.embed_texts(["a"])
    primary.fail = None
    clock.now += 30
    result = backend.embed_texts(["b"])
    assert result.service == SERVICE_SAGEMAKER and "fallback" not in result.meta
    assert backend.circuit.state == "closed"
    assert backend.health()["status"] == "ok"


def test_a_failed_trial_reopens_for_another_cooldown() -> None:
    backend, primary, _, clock = _pair(threshold=2, cooldown=30)
    primary.fail = BackendUnavailableError("down")
    backend.embed_texts(["a"])
    backend.embed_texts(["a"])
    clock.now += 31
    assert backend.embed_texts(["trial"]).meta["fallback_reason"] == "endpoint_unavailable"
    assert len(primary.calls) == 3
    clock.now += 29
    assert backend.embed_texts(["c"]).meta["fallback_reason"] == "circuit_open"
    assert len(primary.calls) == 3
    clock.now += 1
    backend.embed_texts(["d"])
    assert len(primary.calls) == 4


def test_half_open_lets_exactly_one_trial_through_while_others_use_the_secondary() -> None:
    backend, primary, _, clock = _pair(threshold=1, cooldown=5)
    primary.fail = BackendUnavailableError("down")
    backend.embed_texts(["open it"])
    primary.fail = None
    clock.now += 5
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        assert release.wait(10)

    primary.before = hold
    with ThreadPoolExecutor(max_workers=9) as pool:
        trial = pool.submit(backend.embed_texts, ["trial"])
        assert entered.wait(10)
        others = [f.result() for f in [pool.submit(backend.embed_texts, [f"x{i}"]) for i in range(8)]]
        release.set()
        assert trial.result().service == SERVICE_SAGEMAKER
    assert all(r.meta["fallback_reason"] == "circuit_open" for r in others)
    assert [c[1] for c in primary.calls] == [["open it"], ["trial"]]
    assert backend.circuit.state == "closed"


def test_many_threads_see_a_consistent_circuit() -> None:
    threshold, threads = 5, 8
    backend, primary, secondary, _ = _pair(threshold=threshold)
    primary.fail = BackendTimeoutError("too slow")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda i: backend.embed_texts([str(i)]), range(400)))
    assert all(r.service == SERVICE_LOCAL and r.meta["fallback"] for r in results)
    assert threshold <= len(primary.calls) <= threshold + threads - 1
    assert len(secondary.calls) == 400
    assert backend.circuit.state == "open"


def test_when_both_fail_the_primarys_error_is_raised_and_counted() -> None:
    backend, primary, secondary, _ = _pair()
    primary.fail = BackendTimeoutError("primary too slow")
    secondary.fail = BackendUnavailableError("local model not loaded")
    with pytest.raises(BackendTimeoutError) as info:
        backend.embed_texts(["a"])
    assert isinstance(info.value.__cause__, BackendUnavailableError)
    assert backend.circuit.snapshot()["consecutive_failures"] == 1


def test_input_both_backends_refuse_is_the_callers_fault_and_not_counted() -> None:
    backend, primary, secondary, _ = _pair(threshold=1)
    primary.fail = ModelError("container could not decode the image")
    secondary.fail = UnprocessableError("corrupt image", code="image_corrupt")
    with pytest.raises(UnprocessableError):
        backend.embed_images([b"garbage"])
    assert backend.circuit.state == "closed"


def test_an_outage_still_counts_when_the_secondary_refuses_the_input() -> None:
    backend, primary, secondary, _ = _pair(threshold=1)
    primary.fail = BackendUnavailableError("down")
    secondary.fail = UnprocessableError("corrupt image", code="image_corrupt")
    with pytest.raises(UnprocessableError):
        backend.embed_images([b"garbage"])
    assert backend.circuit.state == "open"


def test_a_bug_in_the_primary_surfaces_and_frees_the_trial() -> None:
    backend, primary, _, clock = _pair(threshold=1, cooldown=5)
    primary.fail = BackendUnavailableError("down")
    backend.embed_texts(["a"])
    clock.now += 5
    primary.fail = KeyError("bug")
    with pytest.raises(KeyError):
        backend.embed_texts(["trial"])
    primary.fail = None
    assert backend.embed_texts(["next trial"]).service == SERVICE_SAGEMAKER


def test_health_is_down_when_the_circuit_is_open_and_the_secondary_fails() -> None:
    backend, primary, secondary, _ = _pair(threshold=1)
    primary.fail = BackendUnavailableError("down")
    backend.embed_texts(["a"])
    secondary.fail = BackendUnavailableError("local gone too")
    health = backend.health()
    assert health["status"] == "down"
    assert health["primary"]["status"] == health["secondary"]["status"] == "down"
    assert health["secondary"]["error"]["code"] == "endpoint_unavailable"
