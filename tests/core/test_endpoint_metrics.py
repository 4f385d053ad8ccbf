"""The shared endpoint query module against moto's SageMaker and CloudWatch (and Stubber for AWS failures)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from omnisearch_embed.endpoint_metrics import endpoint_report, fetch_metrics, function_namespace
from omnisearch_embed.endpoint_status import describe_endpoint_status, list_endpoints
from omnisearch_embed.errors import BackendUnavailableError, InvalidInputError, NotFoundError, ThrottledError
from omnisearch_embed.metrics_window import MAX_HOURS, make_window, validate_hours
from tests.aws_moto import create_endpoint, enable_percentiles, put_endpoint_figures, put_function_figures

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def clock() -> datetime:
    return NOW


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    enable_percentiles(monkeypatch)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        create_endpoint(sagemaker, "omnisearch-embed-dev")
        yield sagemaker, cloudwatch


def count_calls(client, operation: str) -> list[int]:
    calls: list[int] = []
    client.meta.events.register(f"before-call.cloudwatch.{operation}", lambda **_: calls.append(1))
    return calls


def test_report_has_status_and_figures_from_one_get_metric_data_call(aws):
    # GIVEN an InService endpoint with an hour of traffic and the embed function's own metrics
    sagemaker, cloudwatch = aws
    put_endpoint_figures(cloudwatch, "omnisearch-embed-dev", NOW)
    put_function_figures(cloudwatch, NOW)
    calls = count_calls(cloudwatch, "GetMetricData")
    # WHEN we ask for the last hour
    report = endpoint_report("omnisearch-embed-dev", sagemaker=sagemaker, cloudwatch=cloudwatch, hours=1, clock=clock)
    # THEN status comes from describe_endpoint(+config) and the figures from exactly one GetMetricData call
    assert len(calls) == 1
    assert report["endpoint_name"] == "omnisearch-embed-dev"
    assert report["endpoint_status"] == "InService"
    assert report["instance_type"] == "ml.g4dn.xlarge"
    assert report["current_instances"] == 1 and report["desired_instances"] == 1
    assert report["variant_name"] == "AllTraffic"
    assert report["creation_time"] is not None
    assert report["total_invocations"] == 30  # the 1000-invocation burst two hours ago is outside the window
    assert report["invocations_per_instance"] == 30
    # microseconds -> ms: mean of 10..100 ms is 55 ms; nearest-rank p95 of ten values is the largest
    assert report["avg_latency_ms"] == pytest.approx(55.0)
    assert report["p95_latency_ms"] == pytest.approx(100.0)
    assert report["max_latency_ms"] == pytest.approx(100.0)
    assert report["avg_overhead_latency_ms"] == pytest.approx(3.0)
    assert report["errors_4xx"] == 2 and report["errors_5xx"] == 1
    assert report["error_rate"] == pytest.approx(3 / 30)
    assert report["cpu_utilization_percent"] == pytest.approx(50.0)
    assert report["gpu_utilization_percent"] is None  # not published: unknown, not zero
    assert report["function_namespace"] == "OmniSearchEmbed"
    assert report["function_metrics"]["TextEmbeddings"] == {"sum": 8.0, "samples": 2.0, "average": 4.0}
    assert report["function_metrics"]["FallbackUsed"]["sum"] == 1.0
    window = report["window"]
    assert window["hours"] == 1 and window["period_seconds"] == 60
    assert datetime.fromisoformat(window["end"]) == NOW
    assert datetime.fromisoformat(window["start"]) == NOW - timedelta(hours=1)


def test_series_are_timestamped_in_ms_and_ascending(aws):
    _, cloudwatch = aws
    put_endpoint_figures(cloudwatch, "omnisearch-embed-dev", NOW)
    figures = fetch_metrics(cloudwatch, "omnisearch-embed-dev", hours=1, clock=clock)
    latency = figures["series"]["model_latency_ms"]
    assert latency["stat"] == "Average"
    assert latency["values"] == pytest.approx([30.0, 80.0])
    stamps = [datetime.fromisoformat(t) for t in latency["timestamps"]]
    assert stamps == sorted(stamps) and len(stamps) == 2
    assert figures["series"]["invocations"]["values"] == [10.0, 20.0]
    assert figures["series"]["gpu_utilization"] == {"stat": "Average", "timestamps": [], "values": []}


def test_a_window_without_data_is_none_not_zero(aws):
    sagemaker, cloudwatch = aws
    report = endpoint_report("omnisearch-embed-dev", sagemaker=sagemaker, cloudwatch=cloudwatch, hours=3, clock=clock)
    for key in (
        "total_invocations",
        "avg_latency_ms",
        "p95_latency_ms",
        "errors_4xx",
        "errors_5xx",
        "error_rate",
        "cpu_utilization_percent",
        "gpu_memory_utilization_percent",
    ):
        assert report[key] is None, key
    assert all(s["values"] == [] for s in report["series"].values())
    assert report["function_metrics"] == {}
    assert report["window"]["hours"] == 3


def test_missing_endpoint_is_not_found_and_cloudwatch_is_not_queried(aws):
    sagemaker, cloudwatch = aws
    calls = count_calls(cloudwatch, "GetMetricData")
    with pytest.raises(NotFoundError) as info:
        endpoint_report("no-such-endpoint", sagemaker=sagemaker, cloudwatch=cloudwatch, clock=clock)
    assert info.value.code == "endpoint_not_found" and info.value.status == 404
    assert "no-such-endpoint" in info.value.message
    assert calls == []


def test_include_series_false_drops_only_the_series(aws):
    sagemaker, cloudwatch = aws
    report = endpoint_report(
        "omnisearch-embed-dev", sagemaker=sagemaker, cloudwatch=cloudwatch, include_series=False, clock=clock
    )
    assert "series" not in report and "metrics" in report and "window" in report


def test_function_namespace_follows_powertools_variable(aws, monkeypatch):
    sagemaker, cloudwatch = aws
    put_function_figures(cloudwatch, NOW, namespace="Custom/Embed")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Custom/Embed")
    assert function_namespace() == "Custom/Embed"
    report = endpoint_report("omnisearch-embed-dev", sagemaker=sagemaker, cloudwatch=cloudwatch, clock=clock)
    assert set(report["function_metrics"]) == {"TextEmbeddings", "FallbackUsed"}
    assert function_namespace({}) == "OmniSearchEmbed"


def test_list_endpoints_newest_first(aws):
    sagemaker, _ = aws
    create_endpoint(sagemaker, "omnisearch-embed-prod", instance_type="ml.g4dn.2xlarge")
    names = [row["endpoint_name"] for row in list_endpoints(sagemaker)]
    assert set(names) == {"omnisearch-embed-dev", "omnisearch-embed-prod"}
    assert [r["endpoint_name"] for r in list_endpoints(sagemaker, name_contains="prod")] == ["omnisearch-embed-prod"]
    assert describe_endpoint_status(sagemaker, "omnisearch-embed-prod").instance_type == "ml.g4dn.2xlarge"


@pytest.mark.parametrize("hours", [0, MAX_HOURS + 1, -1, "1", 1.5, True, None])
def test_invalid_hours(hours):
    with pytest.raises(InvalidInputError) as info:
        validate_hours(hours)
    assert info.value.code == "invalid_hours" and info.value.status == 400


@pytest.mark.parametrize(("hours", "period"), [(1, 60), (6, 60), (24, 300), (72, 900)])
def test_window_resolution_keeps_series_small(hours, period):
    window = make_window(hours, lambda: datetime(2026, 5, 1, 12, 34, 56, 789, tzinfo=UTC))
    assert window.period_seconds == period
    assert window.end == datetime(2026, 5, 1, 12, 34, tzinfo=UTC)
    assert window.end - window.start == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("code", "error", "expected_code"),
    [
        ("AccessDeniedException", BackendUnavailableError, "aws_error"),
        ("ThrottlingException", ThrottledError, "aws_throttled"),
    ],
)
def test_aws_failures_map_to_typed_errors(code, error, expected_code):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_endpoint", service_error_code=code, service_message="nope")
        with pytest.raises(error) as info:
            describe_endpoint_status(sagemaker, "omnisearch-embed-dev")
    assert info.value.code == expected_code
    assert code in info.value.message


def test_get_metric_data_pages_are_merged():
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    t0 = NOW - timedelta(minutes=30)
    t1 = NOW - timedelta(minutes=20)
    with Stubber(cloudwatch) as stub:
        stub.add_response("list_metrics", {"Metrics": []})
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [{"Id": "s0", "Timestamps": [t1], "Values": [7.0], "StatusCode": "PartialData"}],
                "NextToken": "page2",
            },
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "s0", "Timestamps": [t0], "Values": [5.0], "StatusCode": "Complete"},
                    {"Id": "w0_sum", "Timestamps": [t0], "Values": [12.0], "StatusCode": "Complete"},
                ]
            },
        )
        figures = fetch_metrics(cloudwatch, "omnisearch-embed-dev", hours=1, clock=clock)
    assert figures["metrics"]["invocations"]["sum"] == 12.0
    assert figures["series"]["invocations"]["values"] == [5.0, 7.0]  # merged across pages, sorted by time
