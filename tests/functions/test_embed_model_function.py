"""The embed and metrics functions with the model function: ENDPOINT_KIND=function and FALLBACK=function.

The backends are the ones the settings build (backend_from_settings) on real boto3 clients under Stubber;
the metrics function reads moto's Lambda and CloudWatch.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import load_event
from omnisearch_testkit.sagemaker_stubs import container_body, item_vector, runtime_client
from tests.aws_moto import enable_percentiles
from tests.functions.test_metrics_function import metrics_event
from tests.helpers.lambda_app import use_backend

FUNCTION = "omnisearch-embed-dev-model"
ENDPOINT = "omnisearch-embed-dev"
MODEL = "ViT-B-32/openai"
NO_CAPACITY = "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress"


def lambda_client() -> Any:
    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def function_answer(texts: list[str]) -> dict[str, Any]:
    body = container_body(
        [item_vector(t) for t in texts], MODEL, truncated=[False] * len(texts), tokens=[4] * len(texts)
    )
    payload = json.dumps({"contentType": "application/json", "body": body.decode(), "isBase64Encoded": False}).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = embed_app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_stack_without_an_endpoint_answers_from_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env({"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION})
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_response("invoke", function_answer(["a red circle"]))
        use_backend(monkeypatch, backend_from_settings(settings, lambda_client=client), settings)
        status, body = invoke(load_event("embed_text", body={"text": "a red circle"}))
        stub.assert_no_pending_responses()
    assert status == 200, body
    assert (body["service"], body["model"]) == ("lambda-model", MODEL)
    assert body["embedding"] == pytest.approx(item_vector("a red circle"))

    status, health = invoke(load_event("health"))
    assert status == 200
    assert health["service"] == "lambda-model"
    assert health["backend"] == {"status": "ok", "service": "lambda-model", "function": FUNCTION, "model": MODEL}


def fallback_app(monkeypatch: pytest.MonkeyPatch) -> tuple[Stubber, Stubber]:
    env = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "FALLBACK": "function",
           "MODEL_FUNCTION_NAME": FUNCTION}  # fmt: skip
    settings = Settings.from_env(env)
    sagemaker, lam = runtime_client(), lambda_client()
    use_backend(monkeypatch, backend_from_settings(settings, sagemaker_client=sagemaker, lambda_client=lam), settings)
    return Stubber(sagemaker), Stubber(lam)


def test_an_endpoint_with_no_capacity_is_answered_by_the_function_and_the_body_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, function = fallback_app(monkeypatch)
    with endpoint, function:
        endpoint.add_client_error("invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400)
        function.add_response("invoke", function_answer(["a red circle", "a blue star"]))
        status, body = invoke(load_event("embed_batch_text", body={"texts": ["a red circle", "a blue star"]}))
    assert status == 200, body
    assert body["service"] == "lambda-model" and body["model"] == MODEL and body["count"] == 2


def test_the_function_throttled_too_is_our_503_not_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, function = fallback_app(monkeypatch)
    with endpoint, function:
        endpoint.add_client_error("invoke_endpoint", "ValidationError", NO_CAPACITY, http_status_code=400)
        function.add_client_error("invoke", "TooManyRequestsException", "Rate Exceeded.", http_status_code=429)
        status, body = invoke(load_event("embed_text", body={"text": "a"}))
    assert status == 503 and body["error"]["code"] == "model_waking"


# --- GET /metrics when the model function serves -----------------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def function_metrics(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {"ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": FUNCTION,
                       "POWERTOOLS_SERVICE_NAME": "omnisearch-metrics"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SAGEMAKER_ENDPOINT_NAME", raising=False)
    monkeypatch.delenv("USE_SAGEMAKER", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    enable_percentiles(monkeypatch)
    from functions.metrics import app as module

    with mock_aws():
        module.deps.cache_clear()
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="model-function", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        boto3.client("lambda", region_name="us-east-1").create_function(
            FunctionName=FUNCTION, Role=role, Runtime="python3.13", Handler="app.lambda_handler",
            Code={"ZipFile": _zip()}, MemorySize=2048, Timeout=25, Architectures=["arm64"],
        )  # fmt: skip
        yield module, boto3.client("cloudwatch", region_name="us-east-1")
    module.deps.cache_clear()


def test_metrics_report_the_function_that_serves(function_metrics: Any) -> None:
    module, cloudwatch = function_metrics
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    dims = [{"Name": "FunctionName", "Value": FUNCTION}]
    data = [("Invocations", 1.0, "Count")] * 20 + [("Errors", 1.0, "Count")] * 2 + [("Throttles", 1.0, "Count")]
    data += [("Duration", float(ms), "Milliseconds") for ms in (80, 90, 100, 400)]
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": n, "Dimensions": dims, "Timestamp": now, "Value": v, "Unit": u} for n, v, u in data],
    )
    response = module.lambda_handler(metrics_event({"hours": "1"}), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert (body["serving"], body["function_name"], body["state"]) == ("function", FUNCTION, "Active")
    assert (body["memory_mb"], body["architectures"], body["timeout_seconds"]) == (2048, ["arm64"], 25)
    assert (body["total_invocations"], body["errors"], body["throttles"]) == (20.0, 2.0, 1.0)
    assert body["error_rate"] == 0.1
    assert body["avg_latency_ms"] == pytest.approx(167.5) and body["max_latency_ms"] == 400.0
    assert "endpoint_name" not in body and "series" not in body


def test_metrics_for_a_missing_function_are_a_404(function_metrics: Any) -> None:
    module, _ = function_metrics
    boto3.client("lambda", region_name="us-east-1").delete_function(FunctionName=FUNCTION)
    response = module.lambda_handler(metrics_event(None), LambdaContext())
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "endpoint_not_found"
