"""api/health.py directly: the deep-health cache probes once per period and is shared per backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from omnisearch_embed.api.health import DeepHealthCache, deep_health_cache
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend


def test_one_probe_per_period_shared_by_concurrent_callers() -> None:
    cache = DeepHealthCache(ttl_seconds=3600)
    probes: list[int] = []

    def probe() -> dict[str, int]:
        probes.append(1)
        return {"n": len(probes)}

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: cache.get(probe)[0], range(8)))
    assert probes == [1] and answers == [{"n": 1}] * 8


def test_an_expired_report_is_probed_again() -> None:
    cache = DeepHealthCache(ttl_seconds=0)
    assert [cache.get(lambda i=i: {"at": i})[0]["at"] for i in range(3)] == [0, 1, 2]


def test_one_cache_per_backend_renewed_when_the_period_changes() -> None:
    backend = StaticBackend()
    first = deep_health_cache(EmbedService(backend, Settings(deep_health_cache_seconds=10)))
    assert deep_health_cache(EmbedService(backend, Settings(deep_health_cache_seconds=10))) is first
    assert deep_health_cache(EmbedService(StaticBackend(), Settings(deep_health_cache_seconds=10))) is not first
    renewed = deep_health_cache(EmbedService(backend, Settings(deep_health_cache_seconds=5)))
    assert renewed is not first and renewed.ttl == 5
