"""What each deploy subcommand does, with typed arguments: deploy, info, delete, list, cost.

The smoke test (``smoke``) and autoscaling (``endpoint_admin``) live beside it; ``deploy_cli`` parses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from omnisearch_embed.endpoint_metrics import endpoint_report
from omnisearch_embed.endpoint_status import describe_endpoint_status, list_endpoints
from omnisearch_ops import image, onnx_archive, sam
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.console import EXIT_USAGE, fail
from omnisearch_ops.costs import INSTANCE_PRICES, estimate, scenario_table, serverless_table
from omnisearch_ops.endpoint_admin import delete_endpoint, owning_stack, scaling_rows
from omnisearch_ops.paths import BUILD
from omnisearch_ops.tables import cost_table, endpoints_table, report_rows, serverless_cost_table, table

DEFAULT_INSTANCE = "ml.g4dn.xlarge"  # template.yaml InstanceType default
DEFAULT_MIN, DEFAULT_MAX, DEFAULT_TARGET = 1, 4, 600  # template.yaml MinInstances, MaxInstances, TargetInvocations...
DEFAULT_RANGE = (DEFAULT_MIN, DEFAULT_MAX, DEFAULT_TARGET)
DEFAULT_MODEL, DEFAULT_PRETRAINED = "ViT-B-32", "openai"  # template.yaml ClipModel, ClipPretrained
SERVING_CONTAINERS = ("endpoint-server", "toolkit")
SERVERLESS_CONTAINERS = ("endpoint-server-cpu", "toolkit")  # template.yaml ServerlessContainer


@dataclass(frozen=True)
class Sizing:
    """The variant's instance type and autoscaling range to deploy.

    None leaves the environment's own value (samconfig's parameter_overrides, else template.yaml's default)
    alone: a deploy changes only what it was asked to.
    """

    instance_type: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    target_invocations: int | None = None

    def overrides(self) -> dict[str, str | int]:
        named = {
            "InstanceType": self.instance_type,
            "MinInstances": self.min_instances,
            "MaxInstances": self.max_instances,
            "TargetInvocationsPerInstance": self.target_invocations,
        }
        return {name: value for name, value in named.items() if value is not None}


@dataclass(frozen=True)
class DeployRequest:
    """One deploy: which model (or an uploaded archive), which serving containers, how big; dry_run prints only.

    None in ``model``, ``pretrained``, ``serverless_container`` and ``sizing`` keeps the environment's value,
    as in ``Sizing``.
    """

    model: str | None = None
    pretrained: str | None = None
    bucket: str | None = None
    model_data_url: str | None = None
    serving_container: str = "endpoint-server"
    serverless_container: str | None = None
    image_tag: str | None = None
    sizing: Sizing = field(default_factory=Sizing)
    dry_run: bool = False


def _check_range(config_env: str, overrides: dict[str, str | int]) -> None:
    """The range sam would deploy, flags over samconfig: a floor above the ceiling fails before anything runs."""
    merged = sam.merged_overrides(config_env, overrides)
    low, high = int(merged.get("MinInstances", DEFAULT_MIN)), int(merged.get("MaxInstances", DEFAULT_MAX))
    if low > high:
        fail(
            f"MinInstances={low} is above MaxInstances={high} (the flags over samconfig's {config_env} values):"
            " pass --max-instances too",
            EXIT_USAGE,
        )


def deploy(target: AwsTarget, request: DeployRequest) -> int:
    """Package and upload the model, build and push our serving images, then sam build and sam deploy.

    With the slim serverless image the archive must carry its ONNX files: one without them is refused before
    anything is uploaded, pushed or deployed, so the endpoint never meets it.
    """
    env_values = sam.samconfig_overrides(target.config_env)
    model = request.model or env_values.get("ClipModel") or DEFAULT_MODEL
    pretrained = request.pretrained if request.pretrained is not None else env_values.get("ClipPretrained")
    pretrained = DEFAULT_PRETRAINED if pretrained is None else pretrained
    prefix = sam.model_s3_prefix(request.bucket, target.config_env, model, pretrained)
    if request.model_data_url is None and prefix is None:
        fail("deploy needs --bucket (where model.tar.gz goes) or --model-data-url", EXIT_USAGE)
    # The key carries the archive's sha256, known once it is built: a changed archive is a new ModelDataUrl.
    model_data_url = request.model_data_url or f"{prefix}/model-<sha256 of the archive>.tar.gz"
    overrides: dict[str, str | int] = {
        "Stage": target.config_env,
        **request.sizing.overrides(),
        "ModelDataUrl": model_data_url,
    }
    for name, value in (("ClipModel", request.model), ("ClipPretrained", request.pretrained)):
        if value is not None:
            overrides[name] = value
    overrides["ServingContainer"] = request.serving_container
    if request.serverless_container is not None:
        overrides["ServerlessContainer"] = request.serverless_container
    _check_range(target.config_env, overrides)
    images = image.images_for(sam.merged_overrides(target.config_env, overrides))
    slim = image.CPU in images
    tag = request.image_tag or image.default_tag()
    if images:
        overrides["EndpointServerImageTag"] = tag
    build, deploy_cmd = sam.sam_commands(target.config_env, overrides, region=target.region, profile=target.profile)
    archive = BUILD / "model.tar.gz"
    region = target.region_name()
    if slim and request.model_data_url and not request.dry_run:  # first: before anything is created
        onnx_archive.require_in_s3(target.session().client("s3"), request.model_data_url)
    account = (
        "<account>"
        if request.dry_run or not images
        else target.session().client("sts").get_caller_identity()["Account"]
    )
    onnx_check = f"refuse the archive unless it carries {', '.join(onnx_archive.ONNX_FILES)} (the slim image)"
    if request.model_data_url:
        steps = [f"{onnx_check}: read {model_data_url}"] if slim else []
    else:
        steps = [f"package {model} ({pretrained}) with its offline wheels into {archive}"]
        steps += [onnx_check] if slim else []
        steps += [f"upload it to {model_data_url} (nothing to upload if that archive is there)"]
    for serving_image in images:
        build_cmd, push_cmd = image.commands(serving_image, account, region, tag)
        size = image.size_step(serving_image)
        steps += [sam.shell(build_cmd), *([size] if size else []), sam.shell(push_cmd)]
    steps += [sam.shell(build), sam.shell(deploy_cmd)]
    mark = "[dry-run] " if request.dry_run else ""
    for number, step in enumerate(steps, 1):
        print(f"{mark}{number}/{len(steps)} {step}")
    if request.dry_run:
        return 0
    if not request.model_data_url:
        assert prefix is not None  # checked above: no archive URL means a bucket
        s3 = target.session().client("s3")
        overrides["ModelDataUrl"] = sam.package_and_upload(model, pretrained, archive, prefix, s3, require_onnx=slim)
        build, deploy_cmd = sam.sam_commands(target.config_env, overrides, region=target.region, profile=target.profile)
    if images:
        image.build_and_push(target.session().client("ecr"), account, region, tag, images)
    sam.run_command(build)
    sam.run_command(deploy_cmd)
    print(f"deployed stack {target.stack}; next: test, then info")
    return 0


def info(target: AwsTarget) -> int:
    session = target.session()
    name = target.endpoint
    report = endpoint_report(
        name,
        sagemaker=session.client("sagemaker"),
        cloudwatch=session.client("cloudwatch"),
        hours=1,
        include_series=False,
    )
    rows = report_rows(report)
    rows += scaling_rows(session.client("application-autoscaling"), name, report["variant_name"])
    print(table(rows))
    return 0


def list_all(target: AwsTarget) -> int:
    print(endpoints_table(list_endpoints(target.session().client("sagemaker"))))
    return 0


def delete(target: AwsTarget, *, yes: bool = False) -> int:
    """The stack when it owns the endpoint, else the bare endpoint; asks on a terminal unless ``yes``."""
    session = target.session()
    name = target.endpoint
    stack = owning_stack(session.client("cloudformation"), target.stack, name)
    if stack is None:
        describe_endpoint_status(session.client("sagemaker"), name)  # 404 before asking about nothing
    what = f"stack {stack} (API, functions and endpoint {name})" if stack else f"endpoint {name}, its config and model"
    if not yes:
        if not sys.stdin.isatty():
            fail(f"refusing to delete {what} without confirmation: stdin is not a terminal; pass --yes", EXIT_USAGE)
        answer = input(f"Delete {what}? Type the endpoint name to confirm: ").strip()
        if answer != name:
            print("not confirmed; nothing deleted")
            return EXIT_USAGE
    if stack:
        session.client("cloudformation").delete_stack(StackName=stack)
        print(f"deleting stack {stack}; CloudFormation removes the endpoint in a few minutes")
    else:
        for line in delete_endpoint(session.client("sagemaker"), session.client("application-autoscaling"), name):
            print(line)
    return 0


def cost(
    instance_type: str = DEFAULT_INSTANCE,
    *,
    min_instances: int = DEFAULT_MIN,
    max_instances: int = DEFAULT_MAX,
    hours_per_day: float | None = None,
    instances: float | None = None,
    days_per_month: float | None = None,
    price_per_hour: float | None = None,
) -> int:
    """The scenario table, plus the caller's own scenario (at least ``min_instances``) when any figure is given."""
    rows = scenario_table(
        instance_type, min_instances=min_instances, max_instances=max_instances, price_per_hour=price_per_hour
    )
    if hours_per_day is not None or instances is not None or days_per_month is not None:
        kwargs = {"days_per_month": days_per_month} if days_per_month is not None else {}
        rows.append(
            estimate(
                instance_type,
                hours_per_day=hours_per_day or 24.0,
                instances=float(min_instances) if instances is None else instances,
                price_per_hour=price_per_hour,
                label="your scenario",
                **kwargs,
            )
        )
    print(cost_table(rows))
    print()
    print(serverless_cost_table(serverless_table()))
    if price_per_hour is None:
        print(f"Prices on file: {', '.join(sorted(INSTANCE_PRICES))}")
    return 0
