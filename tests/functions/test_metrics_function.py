"""GET /metrics through lambda_handler with API Gateway REST events, against moto SageMaker + CloudWatch."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from local_server.lambda_context import LambdaContext
from tests.aws_moto import create_endpoint, enable_percentiles, put_endpoint_figures

EVENT_FILE = Path(__file__).resolve().parents[2] / "events" / "metrics.json"
ENDPOINT = "omnisearch-embed-dev"


def metrics_event(query: dict[str, str] | None) -> dict[str, Any]:
    """events/metrics.json (the one `sam local invoke -e` uses) with our query string."""
    event = copy.deepcopy(json.loads(EVENT_FILE.read_text()))
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
        "POWERTOOLS_SERVICE_NAME": "omnisearch-metrics",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    enable_percentiles(monkeypatch)
    from functions.metrics import app as module

    with mock_aws():
        module.deps.cache_clear()
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        create_endpoint(sagemaker, ENDPOINT)

        def call(query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
            response = module.lambda_handler(metrics_event(query), LambdaContext())
            assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
            return response["statusCode"], json.loads(response["body"])

        yield call, cloudwatch
    module.deps.cache_clear()


def test_metrics_default_window_has_the_seed_shape_and_figures(metrics):
    call, cloudwatch = metrics
    put_endpoint_figures(cloudwatch, ENDPOINT, datetime.now(UTC).replace(second=0, microsecond=0))
    status, body = call()
    assert status == 200
    assert body["endpoint_name"] == ENDPOINT
    assert body["endpoint_status"] == "InService"
    assert body["instance_type"] == "ml.g4dn.xlarge"
    assert body["current_instances"] == 1
    assert body["total_invocations"] == 30
    assert body["avg_latency_ms"] == pytest.approx(55.0)
    assert body["p95_latency_ms"] == pytest.approx(100.0)
    assert body["errors_4xx"] == 2 and body["errors_5xx"] == 1
    assert body["window"]["hours"] == 1
    assert datetime.fromisoformat(body["window"]["end"]) > datetime.fromisoformat(body["window"]["start"])
    assert "series" not in body  # only on request: keeps the default answer small


def test_series_on_request_and_empty_window_is_null(metrics):
    call, _ = metrics
    status, body = call({"hours": "24", "series": "true"})
    assert status == 200
    assert body["window"]["hours"] == 24 and body["window"]["period_seconds"] == 300
    assert body["total_invocations"] is None and body["avg_latency_ms"] is None and body["errors_5xx"] is None
    assert body["series"]["invocations"] == {"stat": "Sum", "timestamps": [], "values": []}


@pytest.mark.parametrize("hours", ["0", "73", "abc", "-5", "1.5"])
def test_bad_hours_is_a_json_client_error(metrics, hours):
    call, _ = metrics
    status, body = call({"hours": hours})
    assert status in (400, 422)
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]


def test_missing_endpoint_is_404_json(metrics, monkeypatch):
    call, _ = metrics
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", "omnisearch-embed-gone")
    from functions.metrics import app as module

    module.deps.cache_clear()
    status, body = call()
    assert status == 404
    assert body["error"]["code"] == "endpoint_not_found"
    assert "omnisearch-embed-gone" in body["error"]["message"]


def test_aws_failure_is_503_json_not_a_stack_trace(metrics):
    call, _ = metrics
    from functions.metrics import app as module

    # the function's own client, stubbed: AccessDenied is what a missing IAM permission looks like

    deps = module.deps()
    with Stubber(deps.sagemaker) as stub:
        stub.add_client_error("describe_endpoint", service_error_code="AccessDeniedException", service_message="no")
        status, body = call()
    assert status == 503
    assert body["error"]["code"] == "aws_error"
    assert "Traceback" not in json.dumps(body)


def test_unconfigured_endpoint_is_503(metrics, monkeypatch):
    call, _ = metrics
    monkeypatch.delenv("SAGEMAKER_ENDPOINT_NAME")
    from functions.metrics import app as module

    module.deps.cache_clear()
    status, body = call()
    assert status == 503 and body["error"]["code"] == "endpoint_not_configured"


COMPONENT = f"{ENDPOINT}-clip"
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def test_a_component_stack_shows_its_copies_and_how_they_changed(metrics, monkeypatch):
    """A model that scales to zero: the copies now and each change in the window (a wake is 0 -> 1).

    moto implements neither inference components nor their scaling dimension: the sagemaker and
    application-autoscaling clients are the function's own, under Stubber; CloudWatch stays moto's."""
    call, _ = metrics
    monkeypatch.setenv("SAGEMAKER_INFERENCE_COMPONENT_NAME", COMPONENT)
    from functions.metrics import app as module

    module.deps.cache_clear()
    deps = module.deps()
    now = datetime.now(UTC)
    endpoint = {
        "EndpointName": ENDPOINT, "EndpointArn": f"{ARN}:endpoint/{ENDPOINT}",
        "EndpointConfigName": f"{ENDPOINT}-config", "EndpointStatus": "InService", "CreationTime": now,
        "LastModifiedTime": now,
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1, "DesiredInstanceCount": 1}],
    }  # fmt: skip
    config = {
        "EndpointConfigName": f"{ENDPOINT}-config", "EndpointConfigArn": f"{ARN}:endpoint-config/c",
        "CreationTime": now,
        "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.g4dn.xlarge"}],
    }  # fmt: skip
    component = {
        "InferenceComponentName": COMPONENT, "InferenceComponentArn": f"{ARN}:inference-component/c",
        "EndpointName": ENDPOINT, "EndpointArn": endpoint["EndpointArn"], "CreationTime": now, "LastModifiedTime": now,
        "InferenceComponentStatus": "InService", "RuntimeConfig": {"CurrentCopyCount": 1, "DesiredCopyCount": 1},
    }  # fmt: skip

    def activity(minutes_ago: int, took: int, before: int, after: int, status: str = "Successful") -> dict[str, Any]:
        start = now - timedelta(minutes=minutes_ago)
        return {
            "ActivityId": f"a{minutes_ago}", "ServiceNamespace": "sagemaker",
            "ResourceId": f"inference-component/{COMPONENT}",
            "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
            "Description": f"Setting desired copy count to {after}.",
            "Cause": f"monitor alarm x in state ALARM triggered policy y changing the desired capacity from {before}"
                     f" to {after}.",
            "StartTime": start, "EndTime": start + timedelta(minutes=took), "StatusCode": status,
        }  # fmt: skip

    activities = [activity(20, 6, 0, 1), activity(45, 1, 1, 0), activity(30, 1, 1, 2, "Failed"), activity(200, 5, 0, 1)]
    with Stubber(deps.sagemaker) as sagemaker, Stubber(deps.scaling) as scaling:
        sagemaker.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
        sagemaker.add_response("describe_endpoint_config", config)
        sagemaker.add_response("describe_inference_component", component, {"InferenceComponentName": COMPONENT})
        scaling.add_response(
            "describe_scaling_activities",
            {"ScalingActivities": activities},
            {"ServiceNamespace": "sagemaker", "ResourceId": f"inference-component/{COMPONENT}",
             "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount"},
        )  # fmt: skip
        status, body = call()
    assert status == 200, body
    report = body["inference_component"]
    assert (report["name"], report["current"], report["desired"]) == (COMPONENT, 1, 1)
    # the window's changes, oldest first; the failed one and the one before the window are left out
    assert [(change["from"], change["to"]) for change in report["changes"]] == [(1, 0), (0, 1)]
    module.deps.cache_clear()
