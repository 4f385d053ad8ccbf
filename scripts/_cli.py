"""What the two operator scripts share: AWS arguments and sessions, samconfig, tables, friendly failures.

Importing this module puts the core (layers/common) and the repository root on sys.path, as Lambda's
/opt/python does for the functions, so the scripts run from a plain checkout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "common", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import boto3  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from omnisearch_embed.costs import (  # noqa: E402
    HOURS_PER_MONTH,
    PRICE_REGION,
    SERVERLESS_PRICE_PER_GB_SECOND,
    CostEstimate,
    ServerlessEstimate,
)
from omnisearch_embed.endpoint_status import aws_error  # noqa: E402
from omnisearch_embed.errors import EmbedError  # noqa: E402

SAMCONFIG = ROOT / "samconfig.toml"
DEFAULT_ENV = "dev"
EXIT_FAILURE, EXIT_USAGE = 1, 2


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--endpoint-name", help="SageMaker endpoint (default: omnisearch-embed-<config env>)")
    group.add_argument("--region", help="AWS region (default: AWS_REGION, then samconfig.toml, then us-east-1)")
    group.add_argument("--profile", help="AWS named profile")
    group.add_argument("--config-env", default=DEFAULT_ENV, help="samconfig.toml environment: dev or prod")


def samconfig_parameters(config_env: str, command: str = "deploy") -> dict[str, Any]:
    """``[<env>.<command>.parameters]`` from samconfig.toml, or {} when there is no such file or table."""
    if not SAMCONFIG.is_file():
        return {}
    config = tomllib.loads(SAMCONFIG.read_text())
    return dict(config.get(config_env, {}).get(command, {}).get("parameters", {}))


def stack_name(config_env: str) -> str:
    return str(samconfig_parameters(config_env).get("stack_name") or f"omnisearch-embed-{config_env}")


def endpoint_name(args: argparse.Namespace) -> str:
    return args.endpoint_name or f"omnisearch-embed-{args.config_env}"


def region(args: argparse.Namespace) -> str:
    return (
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or str(samconfig_parameters(args.config_env).get("region") or "us-east-1")
    )


def session(args: argparse.Namespace) -> boto3.session.Session:
    """A session for --profile/--region; boto3 itself honours AWS_ENDPOINT_URL (moto, LocalStack)."""
    return boto3.session.Session(profile_name=args.profile, region_name=region(args))


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
    for name, figures in report.get("function_metrics", {}).items():
        rows.append((f"{report['function_namespace']}/{name} (sum)", fmt(figures["sum"])))
    return rows


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


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_guarded(main: Any) -> int:
    """Typed errors and Ctrl-C become a one-line message and an exit code, never a traceback."""
    try:
        return int(main() or 0)
    except EmbedError as e:
        print(f"error: {e.message} [{e.code}]", file=sys.stderr)
        return EXIT_FAILURE
    except (ClientError, BotoCoreError) as e:
        error = aws_error(e, "AWS call")
        print(f"error: {error.message} [{error.code}]", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
