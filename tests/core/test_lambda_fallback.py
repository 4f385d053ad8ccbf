"""FALLBACK=function: a SageMaker endpoint backed by the model function, both on real boto3 clients.

The endpoint's faults (no capacity while scaled to zero, a 5xx, a timeout) are answered by the function, named
in ``service``; the caller's mistakes are not retried there; another model is refused; the function failing too
leaves the endpoint's own 503/504. Also which backend each setting builds (ENDPOINT_KIND, FALLBACK).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from omnisearch_embed import deadline
from omnisearch_embed.backends import retries
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.backends.lambda_model import LambdaModelBackend
from omnisearch_embed.backends.sagemaker import SageMakerBackend, client_config
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL, SERVICE_SAGEMAKER
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    ModelError,
    UnprocessableError,
)
from omnisearch_embed.settings import Settings
from omnisearch_testkit.sagemaker_stubs import (
    container_body,
    container_server,
    item_vector,
    runtime_client,
    stub_response,
)

ENDPOINT = "omnisearch-embed-dev"
FUNCTION = "omnisearch-embed-dev-model"
MODEL = "ViT-B-32/openai"
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)


def lambda_client() -> Any:
    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def function_answer(texts: list[str], model: str = MODEL) -> dict[str, Any]:
    body = container_body([item_vector(t) for t in texts], model, truncated=[False] * len(texts))
    payload = json.dumps({"contentType": "application/json", "body": body.decode(), "isBase64Encoded": False}).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}


class Pair:
    """The endpoint and the function, each a real client under its own Stubber, behind one FallbackBackend."""

    def __init__(self, sagemaker: Any = None, *, threshold: int = 3) -> None:
        self.sagemaker_client = sagemaker if sagemaker is not None else runtime_client()
        self.lambda_client = lambda_client()
        self.endpoint = SageMakerBackend(ENDPOINT, MODEL, client=self.sagemaker_client)
        self.function = LambdaModelBackend(FUNCTION, MODEL, client=self.lambda_client, max_concurrency=1)
        self.backend = FallbackBackend(self.endpoint, self.function, failure_threshold=threshold)
        self.function_stub = Stubber(self.lambda_client)


@pytest.fixture
def pair() -> Iterator[Pair]:
    pair = Pair()
    with Stubber(pair.sagemaker_client) as endpoint_stub, pair.function_stub:
        pair.endpoint_stub = endpoint_stub  # type: ignore[attr-defined]
        yield pair
        endpoint_stub.assert_no_pending_responses()
        pair.function_stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("aws_code", "message", "http", "reason"),
    [
        ("ValidationError", NO_CAPACITY, 400, "model_waking"),
        ("ServiceUnavailable", "Service Unavailable", 503, "endpoint_unavailable"),
        ("InternalFailure", "An internal error occurred", 500, "backend_internal_error"),
        ("ThrottlingException", "Rate exceeded", 400, "throttled"),
    ],
)
def test_the_endpoints_faults_are_answered_by_the_function(
    pair: Pair, aws_code: str, message: str, http: int, reason: str
) -> None:
    pair.endpoint_stub.add_client_error("invoke_endpoint", aws_code, message, http_status_code=http)  # type: ignore[attr-defined]
    pair.function_stub.add_response("invoke", function_answer(["a red circle"]))
    result = pair.backend.embed_texts(["a red circle"])
    assert result.service == SERVICE_LAMBDA_MODEL and result.model == MODEL
    assert result.vectors == [item_vector("a red circle")]
    assert result.meta == {"fallback": True, "fallback_reason": reason}


def test_no_capacity_alone_is_a_503_that_says_to_wait(pair: Pair) -> None:
    pair.endpoint_stub.add_client_error("invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400)  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailableError) as raised:
        pair.endpoint.embed_texts(["a"])
    assert (raised.value.status, raised.value.code) == (503, "model_waking")
    assert "UpdateInferenceComponentRuntimeConfig" not in raised.value.message  # AWS's text is logged, not returned


def test_a_crashed_model_on_the_endpoint_falls_back(pair: Pair) -> None:
    pair.endpoint_stub.add_client_error(  # type: ignore[attr-defined]
        "invoke_endpoint", "ModelError", "crashed", http_status_code=424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": "CUDA error"},
    )  # fmt: skip
    pair.function_stub.add_response("invoke", function_answer(["a"]))
    assert pair.backend.embed_texts(["a"]).meta["fallback_reason"] == "model_error"


def test_the_callers_bad_input_is_not_sent_to_the_function(pair: Pair) -> None:
    pair.endpoint_stub.add_client_error(  # type: ignore[attr-defined]
        "invoke_endpoint", "ModelError", "bad image", http_status_code=424,
        modeled_fields={"OriginalStatusCode": 422,
                        "OriginalMessage": '{"code": "invalid_image", "message": "images[0] is not a readable image"}'},
    )  # fmt: skip
    with pytest.raises(UnprocessableError) as raised:
        pair.backend.embed_images([b"not an image"])
    assert raised.value.code == "invalid_image"  # and the function stub had nothing to answer


def test_a_function_serving_another_model_is_refused(pair: Pair) -> None:
    for _ in range(3):
        pair.endpoint_stub.add_client_error("invoke_endpoint", "ServiceUnavailable", "down", http_status_code=503)  # type: ignore[attr-defined]
    for _ in range(4):
        pair.function_stub.add_response("invoke", function_answer(["a"], model="ViT-B-32/laion2b_s34b_b79k"))
    for _ in range(3):  # the fallback failing too: the endpoint's own error, never the other model's vectors
        with pytest.raises(BackendUnavailableError) as raised:
            pair.backend.embed_texts(["a"])
        assert raised.value.code == "endpoint_unavailable"
    assert pair.backend.circuit.state == "open"
    with pytest.raises(ModelError) as mismatch:  # the circuit open: the function alone, refused
        pair.backend.embed_texts(["a"])
    assert mismatch.value.code == "model_mismatch" and "laion2b_s34b_b79k" in mismatch.value.message


def test_the_function_must_match_the_model_the_endpoint_answered_with(pair: Pair) -> None:
    """An endpoint serving another model than configured: the function's configured-model vectors would mix."""
    other = "ViT-B-32/laion2b_s34b_b79k"
    answer = stub_response(container_body([item_vector("a")], other))
    pair.endpoint_stub.add_response("invoke_endpoint", answer)  # type: ignore[attr-defined]
    pair.endpoint_stub.add_client_error("invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400)  # type: ignore[attr-defined]
    pair.function_stub.add_response("invoke", function_answer(["a"], model=MODEL))
    assert pair.backend.embed_texts(["a"]).model == other
    with pytest.raises(BackendUnavailableError):
        pair.backend.embed_texts(["a"])


def test_the_function_failing_too_leaves_the_endpoints_error(pair: Pair) -> None:
    pair.endpoint_stub.add_client_error("invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400)  # type: ignore[attr-defined]
    pair.function_stub.add_client_error("invoke", "TooManyRequestsException", "Rate Exceeded.", http_status_code=429)
    with pytest.raises(BackendUnavailableError) as raised:
        pair.backend.embed_texts(["a"])
    assert (raised.value.status, raised.value.code) == (503, "model_waking")
    assert raised.value.__cause__ is not None and raised.value.__cause__.code == "throttled"


def test_an_open_circuit_skips_the_endpoint_and_says_so(pair: Pair) -> None:
    for _ in range(3):
        pair.endpoint_stub.add_client_error("invoke_endpoint", "ServiceUnavailable", "down", http_status_code=503)  # type: ignore[attr-defined]
    for _ in range(4):
        pair.function_stub.add_response("invoke", function_answer(["a"]))
    reasons = [pair.backend.embed_texts(["a"]).meta["fallback_reason"] for _ in range(4)]
    assert reasons == ["endpoint_unavailable"] * 3 + ["circuit_open"]


def test_a_hanging_endpoint_leaves_the_function_time_inside_the_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with container_server(MODEL, delay=float("inf")) as server:
        client = retries.install(runtime_client(endpoint_url=server.url, config=client_config(20)))
        pair = Pair(client)
        with pair.function_stub:
            pair.function_stub.add_response("invoke", function_answer(["a"]))
            with deadline.scope(time.monotonic() + 2.0):
                result = pair.backend.embed_texts(["a"])
                assert deadline.remaining() > 0  # the answer came inside the budget
    assert result.service == SERVICE_LAMBDA_MODEL and result.meta["fallback_reason"] == "backend_timeout"
    assert len(server.bodies) == 1  # the hanging endpoint was invoked once


def test_a_hanging_endpoint_and_no_time_left_is_the_endpoints_504() -> None:
    pair = Pair()
    with Stubber(pair.sagemaker_client) as endpoint_stub, pair.function_stub:
        endpoint_stub.add_client_error("invoke_endpoint", "ServiceUnavailable", "down", http_status_code=503)
        with deadline.scope(time.monotonic() + 0.3), pytest.raises(BackendUnavailableError):
            pair.backend.embed_texts(["a"])  # under MIN_FALLBACK_SECONDS left: the function is not invoked


# --- which backend the settings build ------------------------------------------------------------------


def test_fallback_function_wraps_the_endpoint_with_the_model_function() -> None:
    env = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "FALLBACK": "function",
           "MODEL_FUNCTION_NAME": FUNCTION, "BACKEND_TIMEOUT_SECONDS": "9"}  # fmt: skip
    sagemaker, lam = runtime_client(), lambda_client()
    backend = backend_from_settings(Settings.from_env(env), sagemaker_client=sagemaker, lambda_client=lam)
    assert isinstance(backend, FallbackBackend)
    assert isinstance(backend.primary, SageMakerBackend) and backend.primary.client is sagemaker
    assert isinstance(backend.secondary, LambdaModelBackend)
    secondary = backend.secondary
    assert (secondary.function_name, secondary.model_id, secondary.client, secondary.timeout_seconds) == (
        FUNCTION, MODEL, lam, 9.0)  # fmt: skip
    assert backend.service == SERVICE_SAGEMAKER


def test_endpoint_kind_function_serves_from_the_function_alone() -> None:
    env = {"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION}
    lam = lambda_client()
    backend = backend_from_settings(Settings.from_env(env), lambda_client=lam)
    assert isinstance(backend, LambdaModelBackend) and backend.client is lam
    assert (backend.function_name, backend.model_id, backend.service) == (FUNCTION, MODEL, "lambda-model")


def test_the_default_lambda_client_is_built_for_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_LAMBDA", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    env = {"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION, "AWS_REGION": "eu-west-1"}
    backend = backend_from_settings(Settings.from_env(env))
    assert backend.client.meta.region_name == "eu-west-1" and backend.client.meta.service_model.service_name == "lambda"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ENDPOINT_KIND": "function"}, "MODEL_FUNCTION_NAME"),
        ({"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION, "USE_SAGEMAKER": "true"}, "USE_SAGEMAKER"),
        ({"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION, "SAGEMAKER_ENDPOINT_NAME": ENDPOINT},
         "SAGEMAKER_ENDPOINT_NAME"),
        ({"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION, "FALLBACK": "other"}, "FALLBACK"),
        ({"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "FALLBACK": "function"}, "MODEL_FUNCTION_NAME"),
        ({"ENDPOINT_KIND": "lambda"}, "ENDPOINT_KIND"),
    ],
)  # fmt: skip
def test_contradicting_settings_fail_the_cold_start(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)


def test_a_slow_function_alone_is_our_504() -> None:
    lam = lambda_client()
    backend = LambdaModelBackend(FUNCTION, MODEL, client=lam)
    with Stubber(lam) as stub:
        payload = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 20.00 seconds"})
        raw = payload.encode()
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": StreamingBody(io.BytesIO(raw), len(raw))})  # fmt: skip
        with pytest.raises(BackendTimeoutError) as raised:
            backend.embed_texts(["a"])
    assert raised.value.status == 504
