"""CloudWatch figures for one endpoint over the last N hours, in a single GetMetricData call.

The metrics function (``GET /metrics``), the monitor (table, ``--export``, ``--plot``) and the deploy
script's ``--info`` all read through :func:`endpoint_report`, so they always agree. Each metric is asked
for twice in the same call: once with the whole window as its period (exact window average, p95 and
sums) and once as a time series for charts. SageMaker reports latency in microseconds: we convert to
milliseconds. A metric with no data points is ``None``, never zero: "no traffic" and "not measured"
must not look the same as "zero errors".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.endpoint_status import DEFAULT_VARIANT, aws_error, describe_endpoint_status
from omnisearch_embed.metrics_window import Clock, Window, make_window, utc_now, validate_hours

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
ENDPOINT_NAMESPACE = "/aws/sagemaker/Endpoints"
DEFAULT_FUNCTION_NAMESPACE = "OmniSearchEmbed"
MICROSECONDS_TO_MS = 0.001
MAX_FUNCTION_METRICS = 40  # 2 queries each; GetMetricData allows 500 per call


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric: where it lives, which window statistics we report, how to plot it."""

    key: str
    namespace: str
    name: str
    stats: tuple[str, ...]
    series_stat: str
    scale: float = 1.0


ENDPOINT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("invocations", SAGEMAKER_NAMESPACE, "Invocations", ("Sum",), "Sum"),
    MetricSpec("invocations_per_instance", SAGEMAKER_NAMESPACE, "InvocationsPerInstance", ("Sum",), "Sum"),
    MetricSpec(
        "model_latency_ms",
        SAGEMAKER_NAMESPACE,
        "ModelLatency",
        ("Average", "p95", "Maximum"),
        "Average",
        MICROSECONDS_TO_MS,
    ),
    MetricSpec(
        "overhead_latency_ms",
        SAGEMAKER_NAMESPACE,
        "OverheadLatency",
        ("Average", "p95"),
        "Average",
        MICROSECONDS_TO_MS,
    ),
    MetricSpec("errors_4xx", SAGEMAKER_NAMESPACE, "Invocation4XXErrors", ("Sum",), "Sum"),
    MetricSpec("errors_5xx", SAGEMAKER_NAMESPACE, "Invocation5XXErrors", ("Sum",), "Sum"),
    MetricSpec("cpu_utilization", ENDPOINT_NAMESPACE, "CPUUtilization", ("Average", "Maximum"), "Average"),
    MetricSpec("gpu_utilization", ENDPOINT_NAMESPACE, "GPUUtilization", ("Average", "Maximum"), "Average"),
    MetricSpec("memory_utilization", ENDPOINT_NAMESPACE, "MemoryUtilization", ("Average", "Maximum"), "Average"),
    MetricSpec("gpu_memory_utilization", ENDPOINT_NAMESPACE, "GPUMemoryUtilization", ("Average", "Maximum"), "Average"),
)


def function_namespace(environ: Mapping[str, str] | None = None) -> str:
    """The namespace the embed function's Powertools metrics go to (same variable Powertools reads)."""
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or DEFAULT_FUNCTION_NAMESPACE


def _query(qid: str, namespace: str, name: str, dims: list[dict[str, str]], period: int, stat: str) -> dict[str, Any]:
    metric = {"Namespace": namespace, "MetricName": name, "Dimensions": dims}
    return {"Id": qid, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}


def _stat_id(stat: str) -> str:
    return stat.lower().replace(".", "_")


def build_queries(
    endpoint_name: str,
    variant_name: str,
    window: Window,
    function_metrics: Iterable[tuple[str, list[dict[str, str]]]] = (),
    namespace: str = DEFAULT_FUNCTION_NAMESPACE,
) -> list[dict[str, Any]]:
    """Every MetricDataQuery of one report: window statistics (``w``), series (``s``), function metrics (``f``)."""
    dims = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant_name}]
    whole = int((window.end - window.start).total_seconds())
    queries: list[dict[str, Any]] = []
    for i, spec in enumerate(ENDPOINT_METRICS):
        for stat in spec.stats:
            queries.append(_query(f"w{i}_{_stat_id(stat)}", spec.namespace, spec.name, dims, whole, stat))
        queries.append(_query(f"s{i}", spec.namespace, spec.name, dims, window.period_seconds, spec.series_stat))
    for j, (name, fdims) in enumerate(function_metrics):
        for stat in ("Sum", "SampleCount"):
            queries.append(_query(f"f{j}_{_stat_id(stat)}", namespace, name, fdims, whole, stat))
    return queries


def discover_function_metrics(cloudwatch: Any, namespace: str) -> list[tuple[str, list[dict[str, str]]]]:
    """The embed function's Powertools metrics (names and dimension sets) that CloudWatch knows of."""
    found: list[tuple[str, list[dict[str, str]]]] = []
    try:
        for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace):
            for metric in page.get("Metrics", []):
                dims = [{"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions", [])]
                found.append((metric["MetricName"], sorted(dims, key=lambda d: d["Name"])))
    except (ClientError, BotoCoreError) as e:
        raise aws_error(e, "ListMetrics") from e
    found.sort(key=lambda item: (item[0], str(item[1])))
    return found[:MAX_FUNCTION_METRICS]


def get_metric_data(cloudwatch: Any, queries: list[dict[str, Any]], window: Window) -> dict[str, dict[str, list]]:
    """One GetMetricData request (following NextToken pages); results by query id, ascending in time."""
    results: dict[str, dict[str, list]] = {q["Id"]: {"timestamps": [], "values": []} for q in queries}
    kwargs: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": window.start,
        "EndTime": window.end,
        "ScanBy": "TimestampAscending",
    }
    try:
        while True:
            page = cloudwatch.get_metric_data(**kwargs)
            for item in page.get("MetricDataResults", []):
                bucket = results.setdefault(item["Id"], {"timestamps": [], "values": []})
                bucket["timestamps"].extend(item.get("Timestamps", []))
                bucket["values"].extend(item.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    except (ClientError, BotoCoreError) as e:
        raise aws_error(e, "GetMetricData") from e
    for bucket in results.values():
        pairs = sorted(zip(bucket["timestamps"], bucket["values"], strict=True), key=lambda p: p[0])
        bucket["timestamps"] = [t for t, _ in pairs]
        bucket["values"] = [v for _, v in pairs]
    return results


def _combine(stat: str, values: list[float]) -> float | None:
    """A window statistic from its data points (normally exactly one); no points means None."""
    if not values:
        return None
    if stat in ("Sum", "SampleCount"):
        return float(sum(values))
    if stat == "Maximum":
        return float(max(values))
    if stat == "Minimum":
        return float(min(values))
    return float(values[0])


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else round(value * scale, 6)


def _function_key(name: str, dims: list[dict[str, str]]) -> str:
    extra = [f"{d['Name']}={d['Value']}" for d in dims if d["Name"] != "service"]
    return f"{name}{{{','.join(extra)}}}" if extra else name


def fetch_metrics(
    cloudwatch: Any,
    endpoint_name: str,
    *,
    hours: int = 1,
    variant_name: str | None = None,
    namespace: str | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Window, per-metric statistics, series and function metrics for one endpoint variant."""
    window = make_window(hours, clock)
    namespace = namespace or function_namespace()
    function_metrics = discover_function_metrics(cloudwatch, namespace)
    queries = build_queries(endpoint_name, variant_name or DEFAULT_VARIANT, window, function_metrics, namespace)
    data = get_metric_data(cloudwatch, queries, window)

    metrics: dict[str, dict[str, float | None]] = {}
    series: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(ENDPOINT_METRICS):
        metrics[spec.key] = {
            stat.lower(): _scaled(_combine(stat, data[f"w{i}_{_stat_id(stat)}"]["values"]), spec.scale)
            for stat in spec.stats
        }
        points = data[f"s{i}"]
        series[spec.key] = {
            "stat": spec.series_stat,
            "timestamps": [t.isoformat() for t in points["timestamps"]],
            "values": [_scaled(v, spec.scale) for v in points["values"]],
        }
    functions: dict[str, dict[str, float | None]] = {}
    for j, (name, fdims) in enumerate(function_metrics):
        total = _combine("Sum", data[f"f{j}_sum"]["values"])
        samples = _combine("SampleCount", data[f"f{j}_samplecount"]["values"])
        average = total / samples if total is not None and samples else None
        functions[_function_key(name, fdims)] = {"sum": total, "samples": samples, "average": average}
    return {
        "window": window.to_dict(),
        "metrics": metrics,
        "series": series,
        "function_namespace": namespace,
        "function_metrics": functions,
    }


def summarize(metrics: Mapping[str, Mapping[str, float | None]]) -> dict[str, float | None]:
    """The flat headline figures (the /metrics names callers already read, plus errors and p95)."""
    invocations = metrics["invocations"]["sum"]
    e4, e5 = metrics["errors_4xx"]["sum"], metrics["errors_5xx"]["sum"]
    errors = None if e4 is None and e5 is None else (e4 or 0.0) + (e5 or 0.0)
    error_rate = round(errors / invocations, 6) if errors is not None and invocations else None
    return {
        "total_invocations": invocations,
        "invocations_per_instance": metrics["invocations_per_instance"]["sum"],
        "avg_latency_ms": metrics["model_latency_ms"]["average"],
        "p95_latency_ms": metrics["model_latency_ms"]["p95"],
        "max_latency_ms": metrics["model_latency_ms"]["maximum"],
        "avg_overhead_latency_ms": metrics["overhead_latency_ms"]["average"],
        "p95_overhead_latency_ms": metrics["overhead_latency_ms"]["p95"],
        "errors_4xx": e4,
        "errors_5xx": e5,
        "error_rate": error_rate,
        "cpu_utilization_percent": metrics["cpu_utilization"]["average"],
        "gpu_utilization_percent": metrics["gpu_utilization"]["average"],
        "memory_utilization_percent": metrics["memory_utilization"]["average"],
        "gpu_memory_utilization_percent": metrics["gpu_memory_utilization"]["average"],
    }


def endpoint_report(
    endpoint_name: str,
    *,
    sagemaker: Any,
    cloudwatch: Any,
    hours: int = 1,
    namespace: str | None = None,
    include_series: bool = True,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Status + headline figures + details: the one JSON document /metrics serves and --export writes.

    Raises NotFoundError(endpoint_not_found) before touching CloudWatch when the endpoint does not exist.
    """
    validate_hours(hours)
    status = describe_endpoint_status(sagemaker, endpoint_name)
    figures = fetch_metrics(
        cloudwatch, endpoint_name, hours=hours, variant_name=status.variant_name, namespace=namespace, clock=clock
    )
    report: dict[str, Any] = {**status.to_dict(), **summarize(figures["metrics"])}
    report.update(figures)
    if not include_series:
        report.pop("series")
    return report
