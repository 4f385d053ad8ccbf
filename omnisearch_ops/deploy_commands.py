"""What each deploy subcommand does, with typed arguments: deploy, info, delete, list, cost, wake, sleep.

The smoke test (``smoke``), autoscaling (``endpoint_admin``) and the inference component (``components``)
live beside it; ``deploy_cli`` parses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from omnisearch_embed.endpoint_metrics import endpoint_report
from omnisearch_embed.endpoint_status import describe_endpoint_status, list_endpoints
from omnisearch_ops import components, image, onnx_archive, sam
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.console import EXIT_USAGE, fail
from omnisearch_ops.costs import (
    BURST_MINUTES,
    INSTANCE_PRICES,
    WAKE_MINUTES,
    burst_estimate,
    bursts_label,
    component_table,
    estimate,
    scenario_table,
    serverless_table,
)
from omnisearch_ops.endpoint_admin import component_scaling_rows, delete_endpoint, owning_stack, scaling_rows
from omnisearch_ops.paths import BUILD
from omnisearch_ops.tables import (
    component_cost_notes,
    cost_table,
    endpoints_table,
    report_rows,
    serverless_cost_table,
    table,
)

DEFAULT_INSTANCE = "ml.g4dn.xlarge"  # template.yaml InstanceType default
DEFAULT_MIN, DEFAULT_MAX, DEFAULT_TARGET = 1, 4, 600  # template.yaml MinInstances, MaxInstances, TargetInvocations...
DEFAULT_RANGE = (DEFAULT_MIN, DEFAULT_MAX, DEFAULT_TARGET)
DEFAULT_MODEL, DEFAULT_PRETRAINED = "ViT-B-32", "openai"  # template.yaml ClipModel, ClipPretrained
SERVING_CONTAINERS = ("endpoint-server", "toolkit")
SERVERLESS_CONTAINERS = ("endpoint-server-cpu", "toolkit")  # template.yaml ServerlessContainer
KINDS = ("realtime", "serverless", "function", components.KIND)  # template.yaml EndpointKind


def min_floor(kind: str | None) -> int:
    """The lowest MinInstances a kind takes, and what template.yaml's empty MinInstances means for it.

    Only an inference component scales to zero (copies, and so instances); a realtime variant keeps one.
    """
    return 0 if kind == components.KIND else DEFAULT_MIN


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

    None in ``model``, ``pretrained``, ``kind``, ``serverless_container`` and ``sizing`` keeps the
    environment's value, as in ``Sizing``.
    """

    model: str | None = None
    pretrained: str | None = None
    kind: str | None = None
    bucket: str | None = None
    model_data_url: str | None = None
    serving_container: str = "endpoint-server"
    serverless_container: str | None = None
    image_tag: str | None = None
    sizing: Sizing = field(default_factory=Sizing)
    dry_run: bool = False


def _check_range(config_env: str, overrides: dict[str, str | int]) -> None:
    """The range sam would deploy, flags over samconfig: a floor the kind refuses, or above the ceiling, fails
    before anything runs. A components floor above 0 is deployed, with a note: that component never sleeps.
    """
    merged = sam.merged_overrides(config_env, overrides)
    kind = merged.get("EndpointKind") or image.TEMPLATE_DEFAULTS["EndpointKind"]
    floor = min_floor(kind)
    low = int(merged.get("MinInstances") or floor)  # empty: the kind's own floor
    high = int(merged.get("MaxInstances") or DEFAULT_MAX)
    where = f"(the flags over samconfig's {config_env} values)"
    if low < floor:
        fail(
            f"MinInstances={low} needs EndpointKind {components.KIND}, not {kind} {where}:"
            f" only an inference component scales to zero; pass --kind {components.KIND} or --min-instances 1",
            EXIT_USAGE,
        )
    if low > high:
        fail(f"MinInstances={low} is above MaxInstances={high} {where}: pass --max-instances too", EXIT_USAGE)
    if kind == components.KIND and low > 0:
        print(
            f"note: MinInstances={low} {where} keeps {components.copies_text(low)} of the component running: it"
            " never scales to zero; --min-instances 0 lets it sleep"
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
        **({"EndpointKind": request.kind} if request.kind is not None else {}),
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
    """Status, the last hour's figures and the scaling: the component's copies where the endpoint has one."""
    session = target.session()
    name = target.endpoint
    sagemaker, scaling = session.client("sagemaker"), session.client("application-autoscaling")
    report = endpoint_report(
        name, sagemaker=sagemaker, cloudwatch=session.client("cloudwatch"), hours=1, include_series=False
    )
    components.with_component(report, sagemaker, scaling)
    rows = report_rows(report)
    if "inference_component" in report:  # the copies scale, not the variant's instances
        rows += component_scaling_rows(scaling, report["inference_component"]["name"])
    else:
        rows += scaling_rows(scaling, name, report["variant_name"])
    print(table(rows))
    return 0


def set_copies(target: AwsTarget, copies: int) -> int:
    """wake (copies >= 1) and sleep (0): the component's copy count by hand; instances follow."""
    sagemaker = target.session().client("sagemaker")
    for line in components.set_copies(sagemaker, target.endpoint, copies, config_env=target.config_env):
        print(line)
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
    kind: str = "realtime",
    min_instances: int | None = None,
    max_instances: int = DEFAULT_MAX,
    hours_per_day: float | None = None,
    instances: float | None = None,
    days_per_month: float | None = None,
    price_per_hour: float | None = None,
    bursts_per_day: float | None = None,
    burst_minutes: float | None = None,
    wake_minutes: float | None = None,
) -> int:
    """The kind's scenario table, plus the caller's own scenario when any of its figures is given.

    realtime: instances around the clock or for ``hours_per_day`` (at least ``min_instances``), then the
    serverless table beside it. components: $0 idle, and what bursts cost (``bursts_per_day`` of
    ``burst_minutes``, each also billing its wake and the scale-in delay). ``min_instances`` None is the
    kind's own floor.
    """
    low = min_floor(kind) if min_instances is None else min_instances
    if kind == components.KIND:
        return _component_cost(
            instance_type,
            min_copies=low,
            max_instances=max_instances,
            days_per_month=days_per_month,
            price_per_hour=price_per_hour,
            bursts_per_day=bursts_per_day,
            burst_minutes=burst_minutes,
            wake_minutes=WAKE_MINUTES if wake_minutes is None else wake_minutes,
        )
    rows = scenario_table(instance_type, min_instances=low, max_instances=max_instances, price_per_hour=price_per_hour)
    if hours_per_day is not None or instances is not None or days_per_month is not None:
        kwargs = {"days_per_month": days_per_month} if days_per_month is not None else {}
        rows.append(
            estimate(
                instance_type,
                hours_per_day=hours_per_day or 24.0,
                instances=float(low) if instances is None else instances,
                price_per_hour=price_per_hour,
                label="your scenario",
                **kwargs,
            )
        )
    print(cost_table(rows))
    print()
    print(serverless_cost_table(serverless_table()))
    _prices_on_file(price_per_hour)
    return 0


def _component_cost(
    instance_type: str,
    *,
    min_copies: int,
    max_instances: int,
    days_per_month: float | None,
    price_per_hour: float | None,
    bursts_per_day: float | None,
    burst_minutes: float | None,
    wake_minutes: float,
) -> int:
    rows = component_table(
        instance_type,
        min_copies=min_copies,
        max_instances=max_instances,
        wake_minutes=wake_minutes,
        price_per_hour=price_per_hour,
    )
    ours = bursts_per_day is not None or burst_minutes is not None or days_per_month is not None
    if ours and min_copies:
        fail(
            f"--min-instances {min_copies} keeps copies running, so the component never sleeps and bursts cost"
            " nothing extra: leave out --bursts-per-day, --burst-minutes and --days-per-month",
            EXIT_USAGE,
        )
    minutes = BURST_MINUTES if burst_minutes is None else burst_minutes
    if ours:
        bursts = 1.0 if bursts_per_day is None else bursts_per_day
        kwargs = {"days_per_month": days_per_month} if days_per_month is not None else {}
        label = f"your scenario: {bursts_label(bursts, minutes)}"
        mine = burst_estimate(
            instance_type,
            bursts_per_day=bursts,
            burst_minutes=minutes,
            wake_minutes=wake_minutes,
            price_per_hour=price_per_hour,
            label=label,
            **kwargs,
        )
        rows.insert(-1, mine)  # before the ceiling, the last row
    print(cost_table(rows))
    print()
    notes = component_cost_notes(
        rows[0].price_per_hour, wake_minutes=wake_minutes, burst_minutes=minutes, min_copies=min_copies
    )
    print(notes)
    _prices_on_file(price_per_hour)
    return 0


def _prices_on_file(price_per_hour: float | None) -> None:
    if price_per_hour is None:
        print(f"Prices on file: {', '.join(sorted(INSTANCE_PRICES))}")
