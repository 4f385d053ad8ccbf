"""GET /health says what serves: engine, precision, why, bf16's measured cosine and the CPU's bf16 flags."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local_server.clip_backend import LocalClipBackend
from model_code.code import clip_cpu
from omnisearch_embed.settings import Settings
from tests.local_server.serving import MainServer, serving

REPORTED = {"engine", "precision", "precision_reason", "bf16_min_cosine", "cpu_flags", "device"}


def test_health_reports_the_engine_and_precision_chosen_at_load(server: MainServer, tiny: Any) -> None:
    backend = httpx.get(f"{server.url}/health", timeout=30).json()["backend"]
    assert backend.items() >= {k: v for k, v in tiny.health().items() if v is not None}.items()
    assert REPORTED - {"bf16_min_cosine"} <= backend.keys()  # a null cosine (never measured) is left out
    assert backend["device"] == "cpu" and backend["precision"] in ("fp32", "bf16") and backend["precision_reason"]
    assert backend["cpu_flags"] == clip_cpu.bf16_flags()


def bf16_flags_or_skip() -> frozenset[str]:
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("OpenVINO cannot run bf16 on this CPU (no AVX-512 or AMX): it would compile bf16 graphs as f32")
    return clip_cpu.cpu_flags() if clip_cpu.native_bf16() else frozenset({"avx512_bf16", "avx512f"})


@pytest.mark.parametrize(
    ("bar", "engine", "precision"),
    [("1.5", "onnxruntime", "fp32"), ("0.99", "openvino", "bf16")],
    ids=["the check cannot pass: fp32", "the check passes: bf16"],
)
def test_health_shows_the_load_time_check(monkeypatch, bar: str, engine: str, precision: str) -> None:
    flags = bf16_flags_or_skip()
    monkeypatch.setattr(clip_cpu, "cpu_flags", lambda: flags)
    for key in ("CLIP_ENGINE", "CLIP_PRECISION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLIP_BF16_MIN_COSINE", bar)
    backend = LocalClipBackend("tiny-shapes")
    with (
        serving(backend, Settings(), local_model=lambda: backend) as running,
        httpx.Client(base_url=running.url, timeout=60) as client,
    ):
        report = client.get("/health").json()["backend"]
        assert client.post("/embed/text", json={"text": "a red circle"}).status_code == 200
        assert client.get("/health").json()["backend"] == report  # a request changes nothing
    assert (report["engine"], report["precision"]) == (engine, precision)
    assert 0.99 <= report["bf16_min_cosine"] < 1.0 and report["cpu_flags"][0] in ("amx_bf16", "avx512_bf16")
    assert ("failed the fidelity check" in report["precision_reason"]) == (precision == "fp32")
