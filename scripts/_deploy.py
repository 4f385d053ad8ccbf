"""The deploy script's steps: sam commands, model upload, smoke test, autoscaling, deletion.

Kept apart from deploy_sagemaker_endpoint.py (which only parses arguments and prints) so each stays short.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import _cli
from botocore.exceptions import ClientError

from omnisearch_embed.endpoint_status import DEFAULT_VARIANT, describe_endpoint_status
from omnisearch_embed.errors import BackendUnavailableError, NotFoundError

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALE_OUT_COOLDOWN, SCALE_IN_COOLDOWN = 300, 600
SAMPLE_TEXT = "a photo of a red circle"


def model_s3_prefix(bucket: str | None, config_env: str, model: str, pretrained: str) -> str | None:
    """Where this environment's archives go; each one's key adds its sha256 (package_model.content_key)."""
    if not bucket:
        return None
    slug = f"{model}-{pretrained}".replace("/", "-") if pretrained else model
    return f"s3://{bucket.removeprefix('s3://').strip('/')}/omnisearch-embed/{config_env}/{slug}"


def sam_executable() -> str:
    """SAM_CLI, then sam on PATH, then the project's own .venv-sam (SAM conflicts with the main venv)."""
    local = _cli.ROOT / ".venv-sam" / "bin" / "sam"
    return os.environ.get("SAM_CLI") or shutil.which("sam") or (str(local) if local.exists() else "sam")


def samconfig_overrides(config_env: str) -> dict[str, str]:
    """samconfig's parameter_overrides: passing our own on the command line replaces them, so we merge."""
    raw = _cli.samconfig_parameters(config_env).get("parameter_overrides", [])
    items = shlex.split(raw) if isinstance(raw, str) else list(raw)
    return dict(item.split("=", 1) for item in items if "=" in item)


def sam_commands(
    config_env: str, overrides: dict[str, Any], *, region: str | None = None, profile: str | None = None
) -> tuple[list[str], list[str]]:
    sam = sam_executable()
    merged = {**samconfig_overrides(config_env), **{k: str(v) for k, v in overrides.items()}}
    build = [sam, "build", "--config-env", config_env]
    deploy = [
        sam,
        "deploy",
        "--config-env",
        config_env,
        "--parameter-overrides",
        *(f"{k}={v}" for k, v in merged.items()),
    ]
    for flag, value in (("--region", region), ("--profile", profile)):
        if value:
            deploy += [flag, value]
    return build, deploy


def shell(command: list[str]) -> str:
    return shlex.join(command)


def run_command(command: list[str]) -> None:
    print(f"$ {shell(command)}", flush=True)
    try:
        result = subprocess.run(command, cwd=_cli.ROOT, check=False)
    except FileNotFoundError:
        _cli.fail(f"{command[0]} not found: install the SAM CLI or set SAM_CLI")
    if result.returncode != 0:
        _cli.fail(f"{command[1] if len(command) > 1 else command[0]} failed with exit code {result.returncode}")


def package_and_upload(model: str, pretrained: str, archive: Path, s3_prefix: str, s3_client: Any) -> str:
    """scripts/package_model.py does the work (offline wheels included); returns the content-addressed URI."""
    import _wheels
    import package_model

    archive.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    wheels = _wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text(), say=package_model.say)
    path = package_model.build_archive(model, pretrained, archive, wheels=wheels)
    print(f"packaged {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s", flush=True)
    uri = package_model.upload_archive(path, s3_prefix, s3_client=s3_client)
    print(f"uploaded {uri}", flush=True)
    return uri


def sample_png() -> bytes:
    """The packager's sample image (its module loads no torch until asked to)."""
    import package_model

    return package_model.sample_png()


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        if "does not exist" in e.response.get("Error", {}).get("Message", ""):
            raise NotFoundError(f"stack {stack!r} does not exist: deploy first", code="stack_not_found") from e
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def owning_stack(cloudformation: Any, stack: str, endpoint: str) -> str | None:
    """The stack's name when it exists and its EndpointName output is this endpoint, else None."""
    try:
        outputs = stack_outputs(cloudformation, stack)
    except NotFoundError:
        return None
    return stack if outputs.get("EndpointName") == endpoint else None


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except urllib.error.URLError as e:
        raise BackendUnavailableError(f"cannot reach {url}: {e.reason}", code="api_unreachable") from e
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"error": {"message": raw[:200].decode("utf-8", "replace")}}
    return status, payload, elapsed_ms


def smoke_test(args: argparse.Namespace) -> int:
    """One text and one image, through the API (stack outputs + API key) or straight to the endpoint."""
    session = _cli.session(args)
    if args.direct:
        from omnisearch_embed.backends.sagemaker import SageMakerBackend
        from omnisearch_embed.settings import model_id_for

        name = _cli.endpoint_name(args)
        status = describe_endpoint_status(session.client("sagemaker"), name)
        if status.endpoint_status != "InService":
            _cli.fail(f"endpoint {name} is {status.endpoint_status}, not InService: {status.failure_reason or 'wait'}")
        backend = SageMakerBackend(
            name, model_id_for(args.model, args.pretrained), client=session.client("sagemaker-runtime")
        )
        print(f"invoking endpoint {name} directly")
        for label, call in (
            ("text", lambda: backend.embed_texts([SAMPLE_TEXT])),
            ("image", lambda: backend.embed_images([sample_png()])),
        ):
            started = time.perf_counter()
            result = call()
            ms = (time.perf_counter() - started) * 1000
            print(f"  {label}: ok in {ms:.0f} ms, model {result.model}, dimension {result.dimension}")
        return 0
    stack = _cli.stack_name(args.config_env)
    outputs = stack_outputs(session.client("cloudformation"), stack)
    if "ApiUrl" not in outputs or "ApiKeyId" not in outputs:
        _cli.fail(f"stack {stack} has no ApiUrl/ApiKeyId outputs")
    key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    base = outputs["ApiUrl"].rstrip("/")
    print(f"testing {base} (stack {stack})")
    failures = 0
    for label, path, body, content_type in (
        ("text", "/embed/text", json.dumps({"text": SAMPLE_TEXT}).encode(), "application/json"),
        ("image", "/embed/image", sample_png(), "image/png"),
    ):
        status, payload, ms = _post(base + path, body, {"Content-Type": content_type, "x-api-key": key})
        if status == 200:
            print(
                f"  {label}: HTTP 200 in {ms:.0f} ms, model {payload.get('model')}, "
                f"dimension {payload.get('dimension')}, service {payload.get('service')}"
            )
        else:
            failures += 1
            error = payload.get("error", {})
            print(f"  {label}: HTTP {status} in {ms:.0f} ms: {error.get('code', '')} {error.get('message', '')}")
    return _cli.EXIT_FAILURE if failures else 0


def _resource_id(endpoint: str, variant: str | None) -> str:
    return f"endpoint/{endpoint}/variant/{variant or DEFAULT_VARIANT}"


def autoscale(args: argparse.Namespace) -> int:
    """Target tracking on SageMakerVariantInvocationsPerInstance (scale out after 5 min, in after 10)."""
    session = _cli.session(args)
    name = _cli.endpoint_name(args)
    status = describe_endpoint_status(session.client("sagemaker"), name)
    resource = _resource_id(name, status.variant_name)
    scaling = session.client("application-autoscaling")
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=args.min_instances,
        MaxCapacity=args.max_instances,
    )
    scaling.put_scaling_policy(
        PolicyName=f"{name}-invocations-per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(args.target_invocations),
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
            "ScaleInCooldown": SCALE_IN_COOLDOWN,
        },
    )
    print(f"autoscaling set on {resource}")
    print(_cli.table(scaling_rows(scaling, name, status.variant_name)))
    return 0


def scaling_rows(scaling: Any, endpoint: str, variant: str | None) -> list[tuple[str, str]]:
    resource = _resource_id(endpoint, variant)
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=SCALABLE_DIMENSION
    )["ScalableTargets"]
    if not targets:
        return [("Autoscaling", "not configured")]
    rows = [("Autoscaling min / max", f"{targets[0]['MinCapacity']} / {targets[0]['MaxCapacity']}")]
    policies = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION
    )["ScalingPolicies"]
    for policy in policies:
        config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
        rows.append(
            (
                f"Policy {policy['PolicyName']}",
                f"target {config.get('TargetValue', 0):g} invocations/instance/min, cooldown out "
                f"{config.get('ScaleOutCooldown', 'n/a')} s / in {config.get('ScaleInCooldown', 'n/a')} s",
            )
        )
    return rows


def delete_endpoint(sagemaker: Any, scaling: Any, endpoint: str) -> list[str]:
    """A bare endpoint (not from our stack): scaling target, endpoint, its config and model."""
    status = describe_endpoint_status(sagemaker, endpoint)
    done = []
    resource = _resource_id(endpoint, status.variant_name)
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=SCALABLE_DIMENSION
    )["ScalableTargets"]
    if targets:
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION
        )
        done.append(f"deregistered autoscaling on {resource}")
    sagemaker.delete_endpoint(EndpointName=endpoint)
    done.append(f"deleted endpoint {endpoint}")
    if status.endpoint_config_name:
        sagemaker.delete_endpoint_config(EndpointConfigName=status.endpoint_config_name)
        done.append(f"deleted endpoint config {status.endpoint_config_name}")
    if status.model_name:
        sagemaker.delete_model(ModelName=status.model_name)
        done.append(f"deleted model {status.model_name}")
    return done
