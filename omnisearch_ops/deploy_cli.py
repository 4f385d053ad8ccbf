"""Deploy and operate the OmniSearch Embed SageMaker endpoint and its API: one subcommand per run.

    omnisearch-deploy deploy --bucket my-models [--kind components --min-instances 0] [--serving-container toolkit]
    omnisearch-deploy test [--direct]
    omnisearch-deploy autoscale --min-instances 1 --max-instances 4
    omnisearch-deploy info | list | delete [--yes]
    omnisearch-deploy wake [--copies 2] | sleep           # the inference component's copies (--kind components)
    omnisearch-deploy cost --instance-type ml.g4dn.xlarge --hours-per-day 8
    omnisearch-deploy cost --kind components --bursts-per-day 3 --burst-minutes 20

``python scripts/deploy_sagemaker_endpoint.py`` runs the same, and still takes the action as a flag
(``--deploy``, ``--test``, ``--autoscale``, ``--info``, ``--list``, ``--delete``, ``--cost``, ``--wake``,
``--sleep``).
--config-env picks the samconfig.toml environment (dev, prod); the endpoint defaults to
omnisearch-embed-<config env>. Exit codes: 0 done, 1 failed (AWS, endpoint, sam), 2 usage or refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from omnisearch_ops import deploy_commands as commands
from omnisearch_ops.aws import add_aws_arguments, from_args, target_from_args
from omnisearch_ops.components import KIND as COMPONENTS
from omnisearch_ops.console import run_guarded
from omnisearch_ops.costs import BURST_MINUTES, PRICE_REGION, SCALE_IN_MINUTES, WAKE_MINUTES
from omnisearch_ops.endpoint_admin import autoscale
from omnisearch_ops.smoke import smoke_test

HELP = {
    "deploy": "package + upload the model, then sam build + sam deploy",
    "test": "send a sample text and image through the deployed API (or the endpoint, --direct)",
    "autoscale": "register/update min, max and target invocations per instance on the variant",
    "info": "endpoint status, last hour's figures and the scaling settings",
    "delete": "delete the stack (or the bare endpoint); asks unless --yes",
    "list": "list the region's SageMaker endpoints",
    "cost": "monthly cost estimate table (--kind components: idle $0, priced per burst)",
    "wake": "inference component (EndpointKind components): set its copies to --copies (default 1)",
    "sleep": "inference component (EndpointKind components): set its copies to 0; idle costs $0",
}
LEGACY_FLAGS = {f"--{name}": name for name in HELP}  # the action flags scripts/deploy_sagemaker_endpoint.py took


def legacy_argv(argv: Sequence[str]) -> list[str]:
    """``--info --config-env prod`` becomes ``info --config-env prod``; a subcommand line passes unchanged.

    Two action flags are refused (exit 2), as they were when they were a mutually exclusive group.
    """
    argv = list(argv)
    flags = [arg for arg in argv if arg in LEGACY_FLAGS]
    if (argv and argv[0] in HELP) or not flags:
        return argv
    if len(flags) > 1:
        build_parser().error(f"one action at a time, not {' '.join(flags)}")
    return [LEGACY_FLAGS[flags[0]], *(arg for arg in argv if arg != flags[0])]


KEPT = "left out: samconfig's value for --config-env, else template.yaml's"


def _model_arguments(parser: argparse.ArgumentParser, *, keep: bool = False) -> None:
    """``keep``: a flag left out is None, so deploy keeps the environment's value instead of a default."""
    model, pretrained = (None, None) if keep else (commands.DEFAULT_MODEL, commands.DEFAULT_PRETRAINED)
    note = f" ({KEPT})" if keep else ""
    parser.add_argument("--model", default=model, help=f"open_clip model name (template ClipModel){note}")
    parser.add_argument(
        "--pretrained", default=pretrained, help=f"open_clip pretrained tag (template ClipPretrained){note}"
    )


class _Refused(argparse.Action):
    """An option cost has no use for: an error saying why, where argparse would only say "unrecognized"."""

    def __init__(self, option_strings: list[str], dest: str, why: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.why = why

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None) -> None:
        parser.error(f"{option} does not apply to cost: {self.why}")


NO_AWS = "the estimate calls no AWS API"
COST_REFUSED = {
    "--target-invocations": "the estimate prices instance-hours, not requests",
    "--region": f"the prices on file are {PRICE_REGION}'s; pass --price-per-hour for another region",
    "--profile": NO_AWS,
    "--endpoint-name": NO_AWS,
    "--config-env": "the estimate reads no samconfig; pass --instance-type, --min-instances and --max-instances",
}


def _sizing_parent(*, keep: bool = False, target: bool = True, kind_floor: bool = False) -> argparse.ArgumentParser:
    """The sizing flags; with ``keep`` (deploy) one left out is None, so samconfig's value stands.

    ``kind_floor`` (cost): --min-instances left out is None too, the --kind's own floor.
    """
    parent = argparse.ArgumentParser(add_help=False)
    sizing = parent.add_argument_group("sizing", KEPT if keep else None)
    defaults = (None,) * 4 if keep else (commands.DEFAULT_INSTANCE, *commands.DEFAULT_RANGE)
    floor = f"autoscaling floor (what idle costs); 0 only with --kind {COMPONENTS}, whose copies it counts"
    if kind_floor:
        floor += f" (default: the kind's own floor, 1, or 0 for {COMPONENTS})"
    sizing.add_argument("--instance-type", default=defaults[0])
    sizing.add_argument("--min-instances", type=int, default=None if kind_floor else defaults[1], help=floor)
    sizing.add_argument("--max-instances", type=int, default=defaults[2])
    if target:
        sizing.add_argument(
            "--target-invocations", type=int, default=defaults[3], help="target invocations per instance per minute"
        )
    return parent


COST_KINDS = ("realtime", COMPONENTS)
# cost --kind components prices bursts, not hours: each option belongs to one kind.
BURST_OPTIONS = {
    "--bursts-per-day": "your own scenario's bursts of requests a day (default 1 once a burst figure is given)",
    "--burst-minutes": f"how long each burst sends requests (default {BURST_MINUTES:g})",
    "--wake-minutes": f"how long a wake takes (default {WAKE_MINUTES:g}, an assumption; info shows the last one)",
}
HOURS_OPTIONS = ("--hours-per-day", "--instances")


def _dest(option: str) -> str:
    return option.removeprefix("--").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnisearch-deploy",
        description=__doc__.split("\n")[0],
        epilog=f"The action flags work too: {', '.join(LEGACY_FLAGS)}.",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    aws = argparse.ArgumentParser(add_help=False)
    add_aws_arguments(aws)
    sizing = _sizing_parent()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = {
        "deploy": [aws, _sizing_parent(keep=True)],
        "autoscale": [aws, sizing],
        "cost": [_sizing_parent(target=False, kind_floor=True)],
    }
    made = {name: sub.add_parser(name, help=text, parents=parents.get(name, [aws])) for name, text in HELP.items()}

    deploy = made["deploy"]
    _model_arguments(deploy, keep=True)
    deploy.add_argument(
        "--kind",
        choices=commands.KINDS,
        help=f"template EndpointKind; {COMPONENTS}: a GPU endpoint whose model (an inference component) scales to"
        f" zero copies and wakes on the first request ({KEPT})",
    )
    deploy.add_argument("--bucket", help="S3 bucket for model.tar.gz")
    deploy.add_argument("--model-data-url", help="use an already uploaded s3://.../model.tar.gz (skips packaging)")
    deploy.add_argument("--dry-run", action="store_true", help="print what deploy would run, run nothing")
    deploy.add_argument(
        "--serving-container",
        choices=commands.SERVING_CONTAINERS,
        default="endpoint-server",
        help="endpoint-server: build and push endpoint_server/Dockerfile (batching); toolkit: the stock DLC",
    )
    deploy.add_argument(
        "--serverless-container",
        choices=commands.SERVERLESS_CONTAINERS,
        help="the serverless model's (EndpointKind or FallbackMode serverless): endpoint-server-cpu builds and"
        " pushes endpoint_server/Dockerfile.cpu (ONNX Runtime, no torch; the archive needs its ONNX files);"
        f" toolkit: the stock CPU DLC ({KEPT})",
    )
    deploy.add_argument(
        "--image-tag",
        help="serving image tag (default: the git commit; uncommitted work: <commit>-dirty-<build context hash>)",
    )

    _model_arguments(made["test"])
    made["test"].add_argument("--direct", action="store_true", help="invoke the endpoint, not the API")
    made["delete"].add_argument("--yes", action="store_true", help="delete without asking")

    cost = made["cost"]
    for option, why in COST_REFUSED.items():
        cost.add_argument(option, action=_Refused, why=why)
    cost.add_argument(
        "--kind",
        choices=COST_KINDS,
        default="realtime",
        help=f"realtime (default): instances around the clock, the serverless table beside it; {COMPONENTS}:"
        f" $0 idle, each burst billed from the wake to the scale-in {SCALE_IN_MINUTES:g} min after its last request",
    )
    cost.add_argument("--hours-per-day", type=float, help="realtime: your own scenario's hours per day")
    cost.add_argument("--instances", type=float, help="realtime: your own scenario's (average) instance count")
    cost.add_argument("--days-per-month", type=float, help="days the endpoint runs (or bursts) per month")
    cost.add_argument("--price-per-hour", type=float, help="override the table's price (USD)")
    for option, text in BURST_OPTIONS.items():
        cost.add_argument(option, type=float, help=f"{COMPONENTS}: {text}")
    made["wake"].add_argument("--copies", type=int, default=1, help="copies to run (default 1)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(legacy_argv(sys.argv[1:] if argv is None else argv))
    low, high, target = (getattr(args, name, None) for name in ("min_instances", "max_instances", "target_invocations"))
    kind = getattr(args, "kind", None)
    if low == 0 and kind != COMPONENTS:
        parser.error(
            f"--min-instances 0 needs --kind {COMPONENTS} (deploy, cost): only an inference component scales to"
            " zero; a realtime variant keeps at least 1 instance"
        )
    below = (low is not None and low < 0) or any(value is not None and value < 1 for value in (high, target))
    if below or (low is not None and high is not None and low > high):
        parser.error(
            f"need 1 <= --min-instances <= --max-instances (0 <= with --kind {COMPONENTS})"
            " and --target-invocations >= 1"
        )
    if args.command == "cost":
        other = HOURS_OPTIONS if kind == COMPONENTS else tuple(BURST_OPTIONS)
        given = [option for option in other if getattr(args, _dest(option)) is not None]
        if given and kind == COMPONENTS:
            parser.error(
                f"{given[0]} does not apply to cost --kind {COMPONENTS}: pass --bursts-per-day and --burst-minutes"
            )
        if given:
            parser.error(f"{given[0]} applies to cost --kind {COMPONENTS} only: a {kind} endpoint bills its hours")
    if getattr(args, "copies", 1) < 1:
        parser.error("--copies must be at least 1 (sleep sets 0)")
    return args


def run(args: argparse.Namespace) -> int:
    """The one place the parsed command line becomes typed calls."""
    target = target_from_args(args)
    if args.command == "deploy":
        request = from_args(commands.DeployRequest, args, sizing=from_args(commands.Sizing, args))
        return commands.deploy(target, request)
    if args.command == "test":
        return smoke_test(target, direct=args.direct, model=args.model, pretrained=args.pretrained)
    if args.command == "autoscale":
        return autoscale(
            target,
            min_instances=args.min_instances,
            max_instances=args.max_instances,
            target_invocations=args.target_invocations,
        )
    if args.command == "cost":
        return commands.cost(
            args.instance_type,
            kind=args.kind,
            min_instances=args.min_instances,
            max_instances=args.max_instances,
            hours_per_day=args.hours_per_day,
            instances=args.instances,
            days_per_month=args.days_per_month,
            price_per_hour=args.price_per_hour,
            **{_dest(option): getattr(args, _dest(option)) for option in BURST_OPTIONS},
        )
    if args.command in ("wake", "sleep"):
        return commands.set_copies(target, args.copies if args.command == "wake" else 0)
    if args.command == "info":
        return commands.info(target)
    if args.command == "list":
        return commands.list_all(target)
    return commands.delete(target, yes=args.yes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
