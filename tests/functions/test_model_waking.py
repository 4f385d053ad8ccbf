"""An endpoint whose model is an inference component scaled to zero: the embed function while it wakes.

Real boto3 clients under Stubber (``sagemaker-runtime`` for InvokeEndpoint, ``sagemaker`` for the component's
copy count, ``lambda`` for the model function), the backends that the settings build, the real handler. A
Stubber fails a test on any call it was not given, so "the endpoint was not called again" is asserted by
giving it nothing more to answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.circuit import CLOSED, WAKING
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.backends.sagemaker import WAKE_RETRY_AFTER_SECONDS, SageMakerBackend
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import load_event
from omnisearch_testkit.sagemaker_stubs import container_body, item_vector, runtime_client, stub_response
from tests.functions.test_embed_model_function import (
    FUNCTION,
    MODEL,
    NO_CAPACITY,
    function_answer,
    invoke,
    lambda_client,
)
from tests.helpers.lambda_app import use_backend

ENDPOINT = "omnisearch-embed-dev"
COMPONENT = "omnisearch-embed-dev-clip"
TEXT_BODY = {"text": "a red circle"}


def control_client() -> Any:
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def described(current: int, desired: int) -> dict[str, Any]:
    return {
        "InferenceComponentName": COMPONENT,
        "InferenceComponentArn": f"arn:aws:sagemaker:us-east-1:123456789012:inference-component/{COMPONENT}",
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "InferenceComponentStatus": "InService",
        "RuntimeConfig": {"CurrentCopyCount": current, "DesiredCopyCount": desired},
        "CreationTime": "2026-12-01T00:00:00Z",
        "LastModifiedTime": "2026-12-01T00:00:00Z",
    }


def invoke_params() -> dict[str, Any]:
    """What InvokeEndpoint must carry: the component, through boto3's own parameter."""
    names = {"EndpointName": ENDPOINT, "InferenceComponentName": COMPONENT}
    return {**names, "ContentType": ANY, "Accept": ANY, "Body": ANY}


def no_capacity(stub: Stubber) -> None:
    stub.add_client_error(
        "invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400, expected_params=invoke_params()
    )


class Stack:
    """The embed function over a component endpoint, with or without FALLBACK=function."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, fallback: str = "none", cooldown: float = 30.0) -> None:
        env = {
            "USE_SAGEMAKER": "true",
            "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
            "SAGEMAKER_INFERENCE_COMPONENT_NAME": COMPONENT,
            "FALLBACK": fallback,
            "MODEL_FUNCTION_NAME": FUNCTION if fallback == "function" else "",
            "CIRCUIT_COOLDOWN_SECONDS": str(cooldown),
        }
        self.settings = Settings.from_env(env)
        runtime, lam, control = runtime_client(), lambda_client(), control_client()
        self.backend = backend_from_settings(
            self.settings, sagemaker_client=runtime, lambda_client=lam, sagemaker_control_client=control
        )
        use_backend(monkeypatch, self.backend, self.settings)
        self.endpoint, self.function, self.control = Stubber(runtime), Stubber(lam), Stubber(control)

    def __enter__(self) -> Stack:
        for stub in (self.endpoint, self.function, self.control):
            stub.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        for stub in (self.endpoint, self.function, self.control):
            stub.deactivate()
        if exc[0] is None:
            for stub in (self.endpoint, self.function, self.control):
                stub.assert_no_pending_responses()


@pytest.fixture
def alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with Stack(monkeypatch) as stack:
        yield stack


def test_every_invoke_names_the_component(alone: Stack) -> None:
    answer = stub_response(container_body([item_vector("a red circle")], MODEL))
    alone.endpoint.add_response("invoke_endpoint", answer, expected_params=invoke_params())
    status, body = invoke(load_event("embed_text", body=TEXT_BODY))
    assert status == 200 and body["service"] == "sagemaker", body


def test_without_a_fallback_the_caller_gets_503_model_waking_with_retry_after(alone: Stack) -> None:
    no_capacity(alone.endpoint)  # one call: the waking answer is not retried inside the budget
    response = embed_app.lambda_handler(load_event("embed_text", body=TEXT_BODY), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 503, body
    assert body["error"]["code"] == "model_waking"
    message = body["error"]["message"]
    assert "waking" in message and "UpdateInferenceComponentRuntimeConfig" not in message  # AWS's words are logged
    headers = {key.lower(): value for key, value in (response.get("headers") or {}).items()}
    multi = {key.lower(): value for key, value in (response.get("multiValueHeaders") or {}).items()}
    assert headers.get("retry-after", (multi.get("retry-after") or [None])[0]) == str(WAKE_RETRY_AFTER_SECONDS)


def test_openai_route_answers_model_waking_in_openais_shape(alone: Stack) -> None:
    no_capacity(alone.endpoint)
    status, body = invoke(load_event("v1_embeddings", body={"input": "a red circle", "model": MODEL}))
    assert status == 503 and body["error"]["code"] == "model_waking" and body["error"]["type"], body


def test_health_says_waking_while_the_component_has_no_copy(alone: Stack) -> None:
    alone.control.add_response(
        "describe_inference_component", described(0, 1), expected_params={"InferenceComponentName": COMPONENT}
    )
    status, first = invoke(load_event("health"))
    status_again, _ = invoke(load_event("health"))  # within the cache: no second DescribeInferenceComponent
    assert (status, status_again) == (200, 200)
    assert first["status"] == "degraded" and first["waking"] is True, first
    assert first["backend"]["copies"] == {"current": 0, "desired": 1, "status": "InService"}
    assert first["backend"]["inference_component"] == COMPONENT


def test_health_is_ok_once_a_copy_runs(alone: Stack) -> None:
    alone.control.add_response("describe_inference_component", described(1, 1))
    status, report = invoke(load_event("health"))
    assert status == 200 and report["status"] == "ok" and "waking" not in report, report
    assert report["backend"]["copies"]["current"] == 1


def test_health_reports_a_control_plane_failure_without_failing(alone: Stack) -> None:
    alone.control.add_client_error("describe_inference_component", "ThrottlingException", "Rate exceeded")
    status, report = invoke(load_event("health"))
    assert status == 200 and report["status"] == "ok", report
    assert report["backend"]["copies"]["error"]["code"] == "aws_throttled"


def test_deep_health_of_a_waking_model_is_degraded_not_down(alone: Stack) -> None:
    alone.control.add_response("describe_inference_component", described(0, 1))
    no_capacity(alone.endpoint)
    status, report = invoke(load_event("health_deep"))
    assert status == 200, report
    assert report["status"] == "degraded" and report["waking"] is True
    assert report["deep"]["error"]["code"] == "model_waking"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def with_function(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, Clock]]:
    clock = Clock()
    with Stack(monkeypatch, fallback="function", cooldown=30) as stack:
        assert isinstance(stack.backend, FallbackBackend)
        stack.backend.circuit._clock = clock  # the breaker's cooldown on a clock the test moves
        yield stack, clock


def test_the_function_answers_at_once_and_the_endpoint_is_probed_each_cooldown(
    with_function: tuple[Stack, Clock],
) -> None:
    stack, clock = with_function
    backend = stack.backend
    assert isinstance(backend, FallbackBackend)
    no_capacity(stack.endpoint)
    stack.function.add_response("invoke", function_answer(["a red circle"]))
    status, body = invoke(load_event("embed_text", body=TEXT_BODY))
    assert status == 200 and body["service"] == "lambda-model", body
    assert backend.circuit.state == WAKING and backend.circuit.snapshot()["consecutive_failures"] == 0

    for _ in range(3):  # within the cooldown the endpoint is not called (the Stubber has nothing for it)
        stack.function.add_response("invoke", function_answer(["a red circle"]))
        assert invoke(load_event("embed_text", body=TEXT_BODY))[1]["service"] == "lambda-model"

    clock.now += 30  # a probe: still waking, still no failure counted, the function answers
    no_capacity(stack.endpoint)
    stack.function.add_response("invoke", function_answer(["a red circle"]))
    assert invoke(load_event("embed_text", body=TEXT_BODY))[1]["service"] == "lambda-model"
    assert backend.circuit.state == WAKING and backend.circuit.snapshot()["consecutive_failures"] == 0

    clock.now += 30  # the copy is up: the first success switches back
    answer = stub_response(container_body([item_vector("a red circle")], MODEL))
    stack.endpoint.add_response("invoke_endpoint", answer, expected_params=invoke_params())
    status, body = invoke(load_event("embed_text", body=TEXT_BODY))
    assert status == 200 and body["service"] == "sagemaker", body
    assert backend.circuit.state == CLOSED and not backend.circuit.is_waking


def test_health_while_the_function_stands_in_says_waking(with_function: tuple[Stack, Clock]) -> None:
    stack, _ = with_function
    no_capacity(stack.endpoint)
    stack.function.add_response("invoke", function_answer(["a red circle"]))
    invoke(load_event("embed_text", body=TEXT_BODY))
    stack.control.add_response("describe_inference_component", described(0, 1))
    status, report = invoke(load_event("health"))
    assert status == 200 and report["status"] == "degraded" and report["waking"] is True, report
    assert report["backend"]["circuit"]["state"] == WAKING


def test_a_fallback_failing_while_waking_is_the_503_model_waking(with_function: tuple[Stack, Clock]) -> None:
    stack, _ = with_function
    no_capacity(stack.endpoint)
    stack.function.add_client_error("invoke", "TooManyRequestsException", "Rate Exceeded.", http_status_code=429)
    status, body = invoke(load_event("embed_text", body=TEXT_BODY))
    assert status == 503 and body["error"]["code"] == "model_waking", body
    # the circuit now skips the endpoint: the function's failure is again answered as waking, at once
    stack.function.add_client_error("invoke", "TooManyRequestsException", "Rate Exceeded.", http_status_code=429)
    status, body = invoke(load_event("embed_text", body=TEXT_BODY))
    assert status == 503 and body["error"]["code"] == "model_waking", body


def test_a_real_failure_after_waking_counts_as_a_failure(with_function: tuple[Stack, Clock]) -> None:
    stack, clock = with_function
    backend = stack.backend
    assert isinstance(backend, FallbackBackend)
    no_capacity(stack.endpoint)
    stack.function.add_response("invoke", function_answer(["a red circle"]))
    invoke(load_event("embed_text", body=TEXT_BODY))
    clock.now += 30
    stack.endpoint.add_client_error("invoke_endpoint", "ServiceUnavailable", "down", http_status_code=503)
    stack.function.add_response("invoke", function_answer(["a red circle"]))
    assert invoke(load_event("embed_text", body=TEXT_BODY))[1]["service"] == "lambda-model"
    assert backend.circuit.state == "open" and not backend.circuit.is_waking


def test_the_settings_build_a_component_backend() -> None:
    settings = Settings.from_env(
        {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "SAGEMAKER_INFERENCE_COMPONENT_NAME": COMPONENT}
    )
    backend = backend_from_settings(settings, sagemaker_client=runtime_client(), sagemaker_control_client=object())
    assert isinstance(backend, SageMakerBackend)
    assert backend.inference_component == COMPONENT and backend.copies is not None
    plain = backend_from_settings(
        Settings.from_env({"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ENDPOINT}),
        sagemaker_client=runtime_client(),
    )
    assert isinstance(plain, SageMakerBackend) and plain.inference_component is None and plain.copies is None
