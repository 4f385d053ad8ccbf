"""Keyless deep health is cached: one probe of the model per backend per period, however many callers."""

from __future__ import annotations

import json
import threading
import types
from typing import Any

import pytest

import functions.embed.app as embed_app
import omnisearch_embed.api.health as health_module
from local_server.lambda_context import LambdaContext
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import load_event
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import use_backend


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(health_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def deep() -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = embed_app.lambda_handler(load_event("health_deep"), LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response["multiValueHeaders"]


def probes(backend: StaticBackend) -> int:
    return sum(1 for kind, _, _ in backend.calls if kind == "texts")


def test_deep_health_probes_once_per_period(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    backend = StaticBackend()
    use_backend(monkeypatch, backend, Settings(deep_health_cache_seconds=10))
    status, first, headers = deep()
    assert status == 200 and first["deep"]["ok"] is True and headers["Age"] == ["0"]
    clock.now += 9.5
    status, again, headers = deep()
    assert again == first and headers["Age"] == ["9"] and probes(backend) == 1
    clock.now += 1
    deep()
    assert probes(backend) == 2  # the period is over: a fresh probe


def test_concurrent_callers_share_the_probe_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    class Slow(StaticBackend):
        def embed_texts(self, texts: Any, *, normalize: bool = True) -> Any:
            release.wait(10)
            return super().embed_texts(texts, normalize=normalize)

    backend = Slow()
    cache = health_module.DeepHealthCache(10)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(lambda: backend.embed_texts(["x"])))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and probes(backend) == 1


def test_shallow_health_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = StaticBackend()
    use_backend(monkeypatch, backend)
    response = embed_app.lambda_handler(load_event("health"), LambdaContext())
    assert response["statusCode"] == 200 and probes(backend) == 0
