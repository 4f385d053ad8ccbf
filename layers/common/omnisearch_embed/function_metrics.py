"""What the model function is and how it served over the last N hours: GET /metrics when ENDPOINT_KIND=function.

A stack without an endpoint has no SageMaker figures to report; the model function's own are Lambda's
(``AWS/Lambda``: invocations, errors, throttles, duration, concurrency), read in one GetMetricData call over
the same window as :mod:`omnisearch_embed.endpoint_metrics`, and its configuration from
``GetFunctionConfiguration``. A metric with no data points is ``None``, never zero.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.endpoint_metrics import get_metric_data
from omnisearch_embed.endpoint_status import aws_error
from omnisearch_embed.errors import NotFoundError
from omnisearch_embed.metrics_window import Clock, Window, make_window, utc_now, validate_hours

LAMBDA_NAMESPACE = "AWS/Lambda"
# (key, metric, window statistics, series statistic)
FUNCTION_METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("invocations", "Invocations", ("Sum",), "Sum"),
    ("errors", "Errors", ("Sum",), "Sum"),
    ("throttles", "Throttles", ("Sum",), "Sum"),
    ("duration_ms", "Duration", ("Average", "p95", "Maximum"), "Average"),
    ("concurrent_executions", "ConcurrentExecutions", ("Maximum",), "Maximum"),
)


def describe_function(lambda_client: Any, function_name: str) -> dict[str, Any]:
    """The function's serving configuration; a missing one is NotFoundError(endpoint_not_found), as for an endpoint."""
    try:
        config = lambda_client.get_function_configuration(FunctionName=function_name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise NotFoundError(f"Lambda function {function_name!r} does not exist", code="endpoint_not_found") from e
        raise aws_error(e, "GetFunctionConfiguration") from e
    except BotoCoreError as e:
        raise aws_error(e, "GetFunctionConfiguration") from e
    return {
        "function_name": config.get("FunctionName", function_name),
        "state": config.get("State"),
        "last_update_status": config.get("LastUpdateStatus"),
        "package_type": config.get("PackageType"),
        "architectures": config.get("Architectures"),
        "memory_mb": config.get("MemorySize"),
        "timeout_seconds": config.get("Timeout"),
        "last_modified": config.get("LastModified"),
    }


def _queries(function_name: str, window: Window) -> list[dict[str, Any]]:
    dims = [{"Name": "FunctionName", "Value": function_name}]
    whole = int((window.end - window.start).total_seconds())
    queries: list[dict[str, Any]] = []

    def query(qid: str, name: str, period: int, stat: str) -> dict[str, Any]:
        metric = {"Namespace": LAMBDA_NAMESPACE, "MetricName": name, "Dimensions": dims}
        return {"Id": qid, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}

    for i, (_, name, stats, series_stat) in enumerate(FUNCTION_METRICS):
        queries.extend(query(f"w{i}_{stat.lower()}", name, whole, stat) for stat in stats)
        queries.append(query(f"s{i}", name, window.period_seconds, series_stat))
    return queries


def _window_value(stat: str, values: list[float]) -> float | None:
    if not values:
        return None
    if stat == "Sum":
        return float(sum(values))
    return float(max(values)) if stat == "Maximum" else float(values[0])


def function_report(
    function_name: str,
    *,
    lambda_client: Any,
    cloudwatch: Any,
    hours: int = 1,
    include_series: bool = True,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Configuration + headline figures (the names an endpoint's report uses where they mean the same)."""
    validate_hours(hours)
    report: dict[str, Any] = {"serving": "function", **describe_function(lambda_client, function_name)}
    window = make_window(hours, clock)
    data = get_metric_data(cloudwatch, _queries(function_name, window), window)
    metrics: dict[str, dict[str, float | None]] = {}
    series: dict[str, dict[str, Any]] = {}
    for i, (key, _, stats, series_stat) in enumerate(FUNCTION_METRICS):
        metrics[key] = {stat.lower(): _window_value(stat, data[f"w{i}_{stat.lower()}"]["values"]) for stat in stats}
        points = data[f"s{i}"]
        series[key] = {
            "stat": series_stat,
            "timestamps": [t.isoformat() for t in points["timestamps"]],
            "values": points["values"],
        }
    invocations, errors = metrics["invocations"]["sum"], metrics["errors"]["sum"]
    report.update(
        total_invocations=invocations,
        errors=errors,
        throttles=metrics["throttles"]["sum"],
        error_rate=round(errors / invocations, 6) if errors is not None and invocations else None,
        avg_latency_ms=metrics["duration_ms"]["average"],
        p95_latency_ms=metrics["duration_ms"]["p95"],
        max_latency_ms=metrics["duration_ms"]["maximum"],
        max_concurrent_executions=metrics["concurrent_executions"]["maximum"],
        window=window.to_dict(),
        metrics=metrics,
    )
    if include_series:
        report["series"] = series
    return report
