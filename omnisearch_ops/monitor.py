#!/usr/bin/env python
"""Watch a SageMaker endpoint: status and CloudWatch figures as a table, a live view, JSON or a chart.

    omnisearch-monitor                                                 # status + last hour, as a table
    python scripts/monitor_sagemaker_endpoint.py                       # the same, from a checkout
    python scripts/monitor_sagemaker_endpoint.py --hours 24 --watch    # refresh every 10 s until Ctrl-C
    python scripts/monitor_sagemaker_endpoint.py --export metrics.json # the same document GET /metrics serves
    python scripts/monitor_sagemaker_endpoint.py --plot latency.png    # invocations and latency over the window
    python scripts/monitor_sagemaker_endpoint.py --list

Everything is read through omnisearch_embed.endpoint_metrics, the module the metrics function uses; an
endpoint that serves an inference component (EndpointKind components) adds its copies, its instances and its
last wake-up (omnisearch_ops.components), in the table and in --export's ``inference_component``.
Exit codes: 0 fine, 1 AWS or endpoint error (e.g. no such endpoint), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from omnisearch_embed.endpoint_metrics import endpoint_report
from omnisearch_embed.endpoint_status import list_endpoints
from omnisearch_embed.metrics_window import MAX_HOURS, MIN_HOURS
from omnisearch_ops.aws import AwsTarget, add_aws_arguments, target_from_args
from omnisearch_ops.components import with_component
from omnisearch_ops.console import run_guarded
from omnisearch_ops.tables import endpoints_table, report_rows, table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="omnisearch-monitor", description=__doc__.split("\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    add_aws_arguments(parser)
    parser.add_argument("--hours", type=int, default=1, help=f"window: the last N hours ({MIN_HOURS}..{MAX_HOURS})")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--watch", action="store_true", help="live view, refreshed every --interval s until Ctrl-C")
    action.add_argument("--export", metavar="FILE", type=Path, help="write the report (with series) as JSON")
    action.add_argument("--plot", metavar="FILE", type=Path, help="PNG chart of invocations and latency")
    action.add_argument("--list", action="store_true", help="list the region's endpoints")
    parser.add_argument("--interval", type=float, default=10.0, help="--watch refresh period in seconds")
    parser.add_argument("--iterations", type=int, help="--watch: stop after N refreshes (default: until Ctrl-C)")
    args = parser.parse_args(argv)
    if not MIN_HOURS <= args.hours <= MAX_HOURS:
        parser.error(f"--hours must be from {MIN_HOURS} to {MAX_HOURS}")
    if args.interval <= 0 or (args.iterations is not None and args.iterations < 1):
        parser.error("--interval must be positive and --iterations at least 1")
    return args


def fetch(target: AwsTarget, hours: int, *, include_series: bool = False) -> dict[str, Any]:
    """The endpoint's report, with ``inference_component`` (copies, instances, last wake-up) where it has one."""
    session = target.session()
    sagemaker = session.client("sagemaker")
    report = endpoint_report(
        target.endpoint,
        sagemaker=sagemaker,
        cloudwatch=session.client("cloudwatch"),
        hours=hours,
        include_series=include_series,
    )
    return with_component(report, sagemaker, session.client("application-autoscaling"))


def show(report: dict[str, Any]) -> None:
    print(table(report_rows(report)))


def watch(target: AwsTarget, hours: int, *, interval: float, iterations: int | None = None) -> int:
    """Redraw every ``interval`` s until Ctrl-C (exit 0) or ``iterations``; clears the screen only on a terminal."""
    count = 0
    try:
        while True:
            report = fetch(target, hours)
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            print(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S}  refresh every {interval:g} s, Ctrl-C stops")
            show(report)
            print(flush=True)
            count += 1
            if iterations is not None and count >= iterations:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        print("stopped", flush=True)
        return 0


def plot(report: dict[str, Any], path: Path) -> None:
    """Two panels sharing the time axis: invocations per period, model latency average (ms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["series"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    window = report["window"]
    for axis, key, label in (
        (top, "invocations", "invocations / period"),
        (bottom, "model_latency_ms", "model latency avg (ms)"),
    ):
        points = series[key]
        stamps = [datetime.fromisoformat(t) for t in points["timestamps"]]
        if stamps:
            axis.plot(stamps, points["values"], marker=".", linewidth=1)
        else:
            axis.text(0.5, 0.5, "no data in this window", ha="center", va="center", transform=axis.transAxes)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    if report.get("p95_latency_ms") is not None:
        bottom.axhline(report["p95_latency_ms"], color="tab:red", linestyle="--", label="p95 over the window")
        bottom.legend(loc="upper right")
    bottom.set_xlim(datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]))
    top.set_title(f"{report['endpoint_name']}: last {window['hours']} h ({window['period_seconds']} s periods)")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def run(args: argparse.Namespace) -> int:
    """The one place the parsed command line becomes typed calls."""
    target = target_from_args(args)
    if args.list:
        print(endpoints_table(list_endpoints(target.session().client("sagemaker"))))
        return 0
    if args.watch:
        return watch(target, args.hours, interval=args.interval, iterations=args.iterations)
    if args.export:
        report = fetch(target, args.hours, include_series=True)
        args.export.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.export} ({report['window']['hours']} h window, {len(report['series'])} series)")
        return 0
    if args.plot:
        plot(fetch(target, args.hours, include_series=True), args.plot)
        print(f"wrote {args.plot}")
        return 0
    show(fetch(target, args.hours))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
