#!/usr/bin/env python
"""Deploy and operate the OmniSearch Embed SageMaker endpoint and its API (one action per run).

    python scripts/deploy_sagemaker_endpoint.py --deploy --bucket my-models [--serving-container toolkit] [--dry-run]
    python scripts/deploy_sagemaker_endpoint.py --test [--direct]
    python scripts/deploy_sagemaker_endpoint.py --autoscale --min-instances 1 --max-instances 4
    python scripts/deploy_sagemaker_endpoint.py --info | --list | --delete [--yes]
    python scripts/deploy_sagemaker_endpoint.py --cost --instance-type ml.g4dn.xlarge --hours-per-day 8

--config-env picks the samconfig.toml environment (dev, prod); the endpoint defaults to
omnisearch-embed-<config env>. Exit codes: 0 done, 1 failed (AWS, endpoint, sam), 2 usage or refused.
"""

from __future__ import annotations

import argparse
import sys

import _cli
import _deploy
import _image

from omnisearch_embed.costs import INSTANCE_PRICES, estimate, scenario_table, serverless_table
from omnisearch_embed.endpoint_metrics import endpoint_report
from omnisearch_embed.endpoint_status import describe_endpoint_status, list_endpoints

DEFAULT_INSTANCE = "ml.g4dn.xlarge"  # template.yaml InstanceType default
DEFAULT_MIN, DEFAULT_MAX, DEFAULT_TARGET = 1, 4, 600  # template.yaml MinInstances, MaxInstances, TargetInvocations...


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawTextHelpFormatter)
    actions = parser.add_mutually_exclusive_group(required=True)
    for flag, text in (
        ("--deploy", "package + upload the model, then sam build + sam deploy"),
        ("--test", "send a sample text and image through the deployed API (or the endpoint, --direct)"),
        ("--autoscale", "register/update min, max and target invocations per instance on the variant"),
        ("--info", "endpoint status, last hour's figures and the scaling settings"),
        ("--delete", "delete the stack (or the bare endpoint); asks unless --yes"),
        ("--list", "list the region's SageMaker endpoints"),
        ("--cost", "monthly cost estimate table"),
    ):
        actions.add_argument(flag, action="store_true", help=text)
    _cli.add_aws_arguments(parser)
    model = parser.add_argument_group("--deploy / --test --direct")
    model.add_argument("--model", default="ViT-B-32", help="open_clip model name (template ClipModel)")
    model.add_argument("--pretrained", default="openai", help="open_clip pretrained tag (template ClipPretrained)")
    model.add_argument("--bucket", help="S3 bucket for model.tar.gz")
    model.add_argument("--model-data-url", help="use an already uploaded s3://.../model.tar.gz (skips packaging)")
    model.add_argument("--dry-run", action="store_true", help="print what --deploy would run, run nothing")
    model.add_argument("--direct", action="store_true", help="--test: invoke the endpoint, not the API")
    model.add_argument(
        "--serving-container",
        choices=["endpoint-server", "toolkit"],
        default="endpoint-server",
        help="endpoint-server: build and push endpoint_server/Dockerfile (batching); toolkit: the stock DLC",
    )
    model.add_argument("--image-tag", help="tag for the serving container image (default: the git commit)")
    sizing = parser.add_argument_group("--deploy / --autoscale / --cost")
    sizing.add_argument("--instance-type", default=DEFAULT_INSTANCE)
    sizing.add_argument("--min-instances", type=int, default=DEFAULT_MIN)
    sizing.add_argument("--max-instances", type=int, default=DEFAULT_MAX)
    sizing.add_argument(
        "--target-invocations", type=int, default=DEFAULT_TARGET, help="target invocations per instance per minute"
    )
    sizing.add_argument("--hours-per-day", type=float, help="--cost: your own scenario's hours per day")
    sizing.add_argument("--instances", type=float, help="--cost: your own scenario's (average) instance count")
    sizing.add_argument("--days-per-month", type=float, help="--cost: days the endpoint runs per month")
    sizing.add_argument("--price-per-hour", type=float, help="--cost: override the table's price (USD)")
    parser.add_argument("--yes", action="store_true", help="--delete without asking")
    args = parser.parse_args(argv)
    if not 1 <= args.min_instances <= args.max_instances or args.target_invocations < 1:
        parser.error("need 1 <= --min-instances <= --max-instances and --target-invocations >= 1")
    for flag in ("dry_run", "direct", "yes"):
        owner = {"dry_run": "deploy", "direct": "test", "yes": "delete"}[flag]
        if getattr(args, flag) and not getattr(args, owner):
            parser.error(f"--{flag.replace('_', '-')} only goes with --{owner}")
    return args


def deploy(args: argparse.Namespace) -> int:
    prefix = _deploy.model_s3_prefix(args.bucket, args.config_env, args.model, args.pretrained)
    if args.model_data_url is None and prefix is None:
        _cli.fail("--deploy needs --bucket (where model.tar.gz goes) or --model-data-url", _cli.EXIT_USAGE)
    # The key carries the archive's sha256, known once it is built: a changed archive is a new ModelDataUrl.
    model_data_url = args.model_data_url or f"{prefix}/model-<sha256 of the archive>.tar.gz"
    overrides = {
        "Stage": args.config_env,
        "InstanceType": args.instance_type,
        "MinInstances": args.min_instances,
        "MaxInstances": args.max_instances,
        "TargetInvocationsPerInstance": args.target_invocations,
        "ModelDataUrl": model_data_url,
        "ClipModel": args.model,
        "ClipPretrained": args.pretrained,
    }
    ours = args.serving_container == "endpoint-server"
    overrides["ServingContainer"] = args.serving_container
    tag = args.image_tag or _image.default_tag()
    if ours:
        overrides["EndpointServerImageTag"] = tag
    build, deploy_cmd = _deploy.sam_commands(args.config_env, overrides, region=args.region, profile=args.profile)
    archive = _cli.ROOT / "build" / "model.tar.gz"
    region = _cli.region(args)
    account = (
        "<account>" if args.dry_run or not ours else _cli.session(args).client("sts").get_caller_identity()["Account"]
    )
    steps = (
        []
        if args.model_data_url
        else [
            f"package {args.model} ({args.pretrained}) with its offline wheels into {archive}",
            f"upload it to {model_data_url} (nothing to upload if that archive is there)",
        ]
    )
    steps += [_deploy.shell(command) for command in (_image.commands(account, region, tag) if ours else [])]
    steps += [_deploy.shell(build), _deploy.shell(deploy_cmd)]
    mark = "[dry-run] " if args.dry_run else ""
    for number, step in enumerate(steps, 1):
        print(f"{mark}{number}/{len(steps)} {step}")
    if args.dry_run:
        return 0
    if not args.model_data_url:
        uri = _deploy.package_and_upload(args.model, args.pretrained, archive, prefix, _cli.session(args).client("s3"))
        overrides["ModelDataUrl"] = uri
        build, deploy_cmd = _deploy.sam_commands(args.config_env, overrides, region=args.region, profile=args.profile)
    if ours:
        _image.build_and_push(_cli.session(args), account, region, tag)
    _deploy.run_command(build)
    _deploy.run_command(deploy_cmd)
    print(f"deployed stack {_cli.stack_name(args.config_env)}; next: --test, then --info")
    return 0


def info(args: argparse.Namespace) -> int:
    session = _cli.session(args)
    name = _cli.endpoint_name(args)
    report = endpoint_report(
        name,
        sagemaker=session.client("sagemaker"),
        cloudwatch=session.client("cloudwatch"),
        hours=1,
        include_series=False,
    )
    rows = _cli.report_rows(report)
    rows += _deploy.scaling_rows(session.client("application-autoscaling"), name, report["variant_name"])
    print(_cli.table(rows))
    return 0


def delete(args: argparse.Namespace) -> int:
    session = _cli.session(args)
    name = _cli.endpoint_name(args)
    stack = _deploy.owning_stack(session.client("cloudformation"), _cli.stack_name(args.config_env), name)
    if stack is None:
        describe_endpoint_status(session.client("sagemaker"), name)  # 404 before asking about nothing
    what = f"stack {stack} (API, functions and endpoint {name})" if stack else f"endpoint {name}, its config and model"
    if not args.yes:
        if not sys.stdin.isatty():
            _cli.fail(
                f"refusing to delete {what} without confirmation: stdin is not a terminal; pass --yes", _cli.EXIT_USAGE
            )
        answer = input(f"Delete {what}? Type the endpoint name to confirm: ").strip()
        if answer != name:
            print("not confirmed; nothing deleted")
            return _cli.EXIT_USAGE
    if stack:
        session.client("cloudformation").delete_stack(StackName=stack)
        print(f"deleting stack {stack}; CloudFormation removes the endpoint in a few minutes")
    else:
        for line in _deploy.delete_endpoint(
            session.client("sagemaker"), session.client("application-autoscaling"), name
        ):
            print(line)
    return 0


def cost(args: argparse.Namespace) -> int:
    rows = scenario_table(args.instance_type, max_instances=args.max_instances, price_per_hour=args.price_per_hour)
    if args.hours_per_day is not None or args.instances is not None or args.days_per_month is not None:
        kwargs = {"days_per_month": args.days_per_month} if args.days_per_month is not None else {}
        rows.append(
            estimate(
                args.instance_type,
                hours_per_day=args.hours_per_day or 24.0,
                instances=args.instances or 1.0,
                price_per_hour=args.price_per_hour,
                label="your scenario",
                **kwargs,
            )
        )
    print(_cli.cost_table(rows))
    print()
    print(_cli.serverless_cost_table(serverless_table()))
    if args.price_per_hour is None:
        print(f"Prices on file: {', '.join(sorted(INSTANCE_PRICES))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cost:
        return cost(args)
    if args.deploy:
        return deploy(args)
    if args.list:
        print(_cli.endpoints_table(list_endpoints(_cli.session(args).client("sagemaker"))))
        return 0
    if args.test:
        return _deploy.smoke_test(args)
    if args.autoscale:
        return _deploy.autoscale(args)
    if args.info:
        return info(args)
    return delete(args)


if __name__ == "__main__":
    sys.exit(_cli.run_guarded(main))
