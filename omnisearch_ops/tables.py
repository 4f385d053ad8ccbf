"""What the commands print: aligned tables of endpoint status, figures, scaling and costs (no dependency)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from omnisearch_ops.components import copies_text
from omnisearch_ops.costs import (
    HOURS_PER_MONTH,
    PRICE_REGION,
    SCALE_IN_MINUTES,
    SERVERLESS_PRICE_PER_GB_SECOND,
    CostEstimate,
    ServerlessEstimate,
    burst_hours,
)


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    """Table cell: None is 'n/a' (no data), numbers are rounded, whole numbers lose their '.0'."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.0f}" if value.is_integer() else f"{value:,.{digits}f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """Plain aligned columns (no dependency), first column left, the rest left too for readability."""
    body = [[str(cell) for cell in row] for row in rows]
    lines = [list(headers)] if headers else []
    lines += body
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(max(map(len, lines)))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if headers and n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def report_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Status and headline figures of an endpoint_report, as (label, value) rows."""
    window = report["window"]
    rows = [
        ("Endpoint", report["endpoint_name"]),
        ("Status", report["endpoint_status"]),
        ("Instance type", fmt(report["instance_type"])),
        ("Instances (current/desired)", f"{fmt(report['current_instances'])}/{fmt(report['desired_instances'])}"),
        ("Created", fmt(report["creation_time"])),
        ("Last modified", fmt(report["last_modified_time"])),
        ("Window", f"last {window['hours']} h ({window['start']} .. {window['end']})"),
        ("Invocations", fmt(report["total_invocations"])),
        ("Invocations per instance", fmt(report["invocations_per_instance"])),
        (
            "Model latency avg / p95 / max",
            " / ".join(fmt(report[k], " ms") for k in ("avg_latency_ms", "p95_latency_ms", "max_latency_ms")),
        ),
        (
            "Overhead latency avg / p95",
            " / ".join(fmt(report[k], " ms") for k in ("avg_overhead_latency_ms", "p95_overhead_latency_ms")),
        ),
        ("Errors 4XX / 5XX", f"{fmt(report['errors_4xx'])} / {fmt(report['errors_5xx'])}"),
        ("Error rate", fmt(None if report["error_rate"] is None else report["error_rate"] * 100, " %", 2)),
        (
            "CPU / memory",
            f"{fmt(report['cpu_utilization_percent'], ' %')} / {fmt(report['memory_utilization_percent'], ' %')}",
        ),
        (
            "GPU / GPU memory",
            f"{fmt(report['gpu_utilization_percent'], ' %')} / {fmt(report['gpu_memory_utilization_percent'], ' %')}",
        ),
    ]
    if report.get("failure_reason"):
        rows.insert(2, ("Failure reason", report["failure_reason"]))
    if report.get("inference_component"):
        at = next(i for i, row in enumerate(rows) if row[0].startswith("Instances")) + 1
        rows[at:at] = component_rows(report["inference_component"])
    for name, figures in report.get("function_metrics", {}).items():
        rows.append((f"{report['function_namespace']}/{name} (sum)", fmt(figures["sum"])))
    return rows


def duration(seconds: float) -> str:
    """``372`` -> ``6 min 12 s``: a wake-up's length as people say it."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def component_rows(view: dict[str, Any]) -> list[tuple[str, str]]:
    """An inference component's rows (components.ComponentView as a dict): copies, instances, last wake-up."""
    wake = view["last_wake"]
    woke = (
        f"{duration(wake['seconds'])} (0 -> {copies_text(wake['copies'])}, {wake['start']} .. {wake['end']})"
        if wake
        else "none on record (Application Auto Scaling keeps six weeks; a wake by hand leaves none)"
    )
    managed = f"{fmt(view['min_instances'])}..{fmt(view['max_instances'])}, {fmt(view['managed_scaling'])}"
    return [
        ("Inference component", f"{view['name']} ({fmt(view['status'])})"),
        ("Copies (current/desired)", f"{fmt(view['current_copies'])}/{fmt(view['desired_copies'])}"),
        ("Instances now (managed min..max)", f"{fmt(view['current_instances'])} ({managed})"),
        ("Last wake-up", woke),
    ]


def endpoints_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No SageMaker endpoints in this region."
    return table(
        [
            (r["endpoint_name"], r["endpoint_status"], fmt(r["creation_time"]), fmt(r["last_modified_time"]))
            for r in rows
        ],
        headers=("Endpoint", "Status", "Created", "Last modified"),
    )


def cost_table(estimates: Sequence[CostEstimate]) -> str:
    lines = [
        table(
            [
                (
                    e.label,
                    e.instance_type,
                    f"${e.price_per_hour:.4f}",
                    fmt(round(e.instance_hours, 1)),
                    f"${e.monthly_usd:,.2f}",
                )
                for e in estimates
            ],
            headers=("Scenario", "Instance", "Price/h", "Instance-hours", "Per month"),
        ),
        "",
        f"Assumptions: on-demand SageMaker real-time inference prices for {PRICE_REGION} (USD, verify on",
        f"aws.amazon.com/sagemaker/pricing or pass --price-per-hour); a month is {HOURS_PER_MONTH:.0f} h",
        "(30.42 days), weekdays 21.73 days; instance-hours only: storage, data transfer, Lambda,",
        "API Gateway and CloudWatch are extra.",
    ]
    return "\n".join(lines)


def serverless_cost_table(estimates: Sequence[ServerlessEstimate]) -> str:
    rows = [
        (e.label, f"{e.memory_mb} MB", fmt(float(e.requests)), f"{e.seconds_per_request:g} s", f"${e.monthly_usd:,.2f}")
        for e in estimates
    ]
    return "\n".join(
        [
            table(rows, headers=("Serverless (EndpointKind / FallbackMode serverless)", "Memory", "Requests",
                                 "Each", "Per month")),
            "",
            f"Serverless: ${SERVERLESS_PRICE_PER_GB_SECOND * 1e6:g} per million GB-seconds of inference plus data",
            "in and out ($0.016/GB), nothing while idle; a cold start (seconds) is billed as inference time.",
        ]
    )  # fmt: skip


def component_cost_notes(
    price_per_hour: float, *, wake_minutes: float, burst_minutes: float, min_copies: int = 0
) -> str:
    """Why an idle component costs $0 and what one burst costs: the instance bills from the wake to the scale-in.

    A floor of copies above 0 never sleeps, and the notes say only that.
    """
    if min_copies:
        return (
            f"Components (EndpointKind components) with MinInstances {min_copies}: that many copies, and the instances"
            " under them,\nrun around the clock: the component never sleeps. --min-instances 0 lets it (idle $0)."
        )
    burst_usd = burst_hours(1, burst_minutes, wake_minutes) * price_per_hour
    wake, burst, scale_in = f"{wake_minutes:g}", f"{burst_minutes:g}", f"{SCALE_IN_MINUTES:g}"
    return "\n".join(
        [
            "Components (EndpointKind components): idle costs $0: no copy runs, so managed instance scaling keeps",
            "no instance. The first request wakes it: a NoCapacityInvocationFailures alarm adds a copy and an",
            f"instance starts ({wake} min assumed; `omnisearch-deploy info` shows the last wake-up, pass it as",
            "--wake-minutes). The instance bills from the wake until target tracking removes the copy about",
            f"{scale_in} min after the last request, so each burst costs (wake + burst + {scale_in}) min x the price:",
            f"({wake} + {burst} + {scale_in}) min x ${price_per_hour:.4f}/h = ${burst_usd:,.2f} per burst.",
            f"Bursts less than {scale_in} min apart merge into one (a day bills 24 h at most); one copy per instance.",
        ]
    )
