"""backend_from_settings: which backend each environment builds, and the combinations refused at cold start."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.stub import Stubber

from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import ConfigError
from omnisearch_embed.settings import Settings
from omnisearch_testkit.sagemaker_stubs import container_body, invoke_params, item_vector, runtime_client, stub_response

PRIMARY = "omnisearch-embed-prod"
STANDBY = "omnisearch-embed-prod-standby"
CLOUD = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": PRIMARY, "AWS_REGION": "eu-west-1"}


class LocalModel:
    """Stands in for local_server's LocalClipBackend (torch is not needed to test the wiring)."""

    service = SERVICE_LOCAL

    def __init__(self, model_id: str = "ViT-B-32/openai") -> None:
        self.model_id = model_id

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return Embeddings([item_vector(t) for t in texts], self.model_id, self.service, 8)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return Embeddings([item_vector(i) for i in images], self.model_id, self.service, 8)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": self.service, "model": self.model_id}


def _body(texts: list[str]) -> bytes:
    return json.dumps({"texts": texts, "normalize": True, "encoding": "base64"}, separators=(",", ":")).encode()


def test_local_mode_uses_the_local_factory() -> None:
    local = LocalModel("tiny-shapes")
    assert backend_from_settings(Settings.from_env({}), local_factory=lambda: local) is local


def test_local_mode_without_a_local_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="USE_SAGEMAKER=true"):
        backend_from_settings(Settings.from_env({}))


def test_sagemaker_mode_builds_the_endpoint_backend_from_the_settings() -> None:
    env = {**CLOUD, "BACKEND_TIMEOUT_SECONDS": "12", "MAX_INVOKE_BYTES": "4096", "CLIP_PRETRAINED": "laion2b_s34b_b79k"}
    client = runtime_client()
    backend = backend_from_settings(Settings.from_env(env), sagemaker_client=client)
    assert isinstance(backend, SageMakerBackend)
    assert (backend.endpoint_name, backend.model_id) == (PRIMARY, "ViT-B-32/laion2b_s34b_b79k")
    assert (backend.timeout_seconds, backend.max_invoke_bytes, backend.client) == (12.0, 4096, client)


def test_without_an_injected_client_both_endpoints_share_one_configured_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = backend_from_settings(Settings.from_env({**CLOUD, "FALLBACK": STANDBY, "BACKEND_TIMEOUT_SECONDS": "8"}))
    assert isinstance(backend, FallbackBackend)
    assert backend.primary.client is backend.secondary.client
    assert backend.primary.client.meta.region_name == "eu-west-1"
    assert backend.primary.client.meta.config.retries["mode"] == "standard"  # with the deadline-aware checker
    assert backend.primary_share == 0.5


def test_fallback_local_wraps_the_endpoint_with_the_local_model() -> None:
    local = LocalModel()
    env = {**CLOUD, "FALLBACK": "local", "CIRCUIT_FAILURE_THRESHOLD": "5", "CIRCUIT_COOLDOWN_SECONDS": "12.5"}
    backend = backend_from_settings(
        Settings.from_env(env), local_factory=lambda: local, sagemaker_client=runtime_client()
    )
    assert isinstance(backend, FallbackBackend)
    assert isinstance(backend.primary, SageMakerBackend) and backend.secondary is local
    assert (backend.circuit.failure_threshold, backend.circuit.cooldown_seconds) == (5, 12.5)


def test_fallback_local_in_lambda_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FALLBACK=local"):
        backend_from_settings(Settings.from_env({**CLOUD, "FALLBACK": "local"}), sagemaker_client=runtime_client())


def test_fallback_local_serving_another_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="two models"):
        backend_from_settings(
            Settings.from_env({**CLOUD, "FALLBACK": "local"}),
            local_factory=lambda: LocalModel("tiny-shapes"),
            sagemaker_client=runtime_client(),
        )


def test_fallback_endpoint_answers_while_the_primary_is_down_then_the_circuit_skips_it() -> None:
    client = runtime_client()
    env = {**CLOUD, "FALLBACK": STANDBY, "CIRCUIT_FAILURE_THRESHOLD": "2"}
    backend = backend_from_settings(Settings.from_env(env), sagemaker_client=client)
    assert isinstance(backend, FallbackBackend) and backend.secondary.endpoint_name == STANDBY
    with Stubber(client) as stubber:
        for text in ("one", "two"):  # the primary fails twice, the standby answers each time
            stubber.add_client_error(
                "invoke_endpoint", "ServiceUnavailable", "Service Unavailable", 503,
                expected_params=invoke_params(PRIMARY, _body([text])),
            )  # fmt: skip
            stubber.add_response(
                "invoke_endpoint",
                stub_response(container_body([item_vector(text)], "ViT-B-32/openai")),
                invoke_params(STANDBY, _body([text])),
            )
        stubber.add_response(  # the circuit is open: straight to the standby
            "invoke_endpoint",
            stub_response(container_body([item_vector("three")], "ViT-B-32/openai")),
            invoke_params(STANDBY, _body(["three"])),
        )
        results = [backend.embed_texts([text]) for text in ("one", "two", "three")]
        stubber.assert_no_pending_responses()
    assert [r.vectors for r in results] == [[item_vector(t)] for t in ("one", "two", "three")]
    assert [r.meta["fallback_reason"] for r in results] == ["endpoint_unavailable"] * 2 + ["circuit_open"]
    assert all(r.service == "sagemaker" for r in results)
    assert backend.health()["status"] == "degraded"
