"""The stack and the endpoint in AWS: stack outputs, autoscaling (the variant's or the component's), deleting."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from omnisearch_embed import component_copies as copies
from omnisearch_embed.endpoint_status import DEFAULT_VARIANT, describe_endpoint_status
from omnisearch_embed.errors import NotFoundError
from omnisearch_ops import components
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.console import EXIT_USAGE, fail
from omnisearch_ops.tables import table

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALE_OUT_COOLDOWN, SCALE_IN_COOLDOWN = 300, 600
# What a target tracking policy's target counts, by its predefined metric (the metric's name otherwise).
TARGET_UNITS = {
    "SageMakerVariantInvocationsPerInstance": "invocations/instance/min",
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution": "concurrent requests/copy",
}


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


def _resource_id(endpoint: str, variant: str | None) -> str:
    return f"endpoint/{endpoint}/variant/{variant or DEFAULT_VARIANT}"


def autoscale(target: AwsTarget, *, min_instances: int, max_instances: int, target_invocations: int) -> int:
    """Target tracking on SageMakerVariantInvocationsPerInstance (scale out after 5 min, in after 10).

    Refused (exit 2) on an endpoint that serves our inference component: the stack scales its copies.
    """
    session = target.session()
    name = target.endpoint
    sagemaker = session.client("sagemaker")
    status = describe_endpoint_status(sagemaker, name)
    component = components.component_name(name)
    if status.model_name is None and components.describe_copies(sagemaker, component) is not None:
        fail(
            f"endpoint {name} serves inference component {component}: its copies scale, not the variant's"
            f" instances; set their range with `omnisearch-deploy deploy --kind {components.KIND}"
            " --min-instances N --max-instances M`",
            EXIT_USAGE,
        )
    resource = _resource_id(name, status.variant_name)
    scaling = session.client("application-autoscaling")
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=min_instances,
        MaxCapacity=max_instances,
    )
    scaling.put_scaling_policy(
        PolicyName=f"{name}-invocations-per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(target_invocations),
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
            "ScaleInCooldown": SCALE_IN_COOLDOWN,
        },
    )
    print(f"autoscaling set on {resource}")
    print(table(scaling_rows(scaling, name, status.variant_name)))
    return 0


def scaling_rows(scaling: Any, endpoint: str, variant: str | None) -> list[tuple[str, str]]:
    """The variant's scalable target (instances) and its policies, as (label, value) rows."""
    return target_rows(scaling, _resource_id(endpoint, variant), SCALABLE_DIMENSION)


def component_scaling_rows(scaling: Any, component: str) -> list[tuple[str, str]]:
    """The inference component's scalable target (copies) and its policies: the wake step and target tracking."""
    return target_rows(scaling, copies.resource_id(component), copies.SCALABLE_DIMENSION, unit=" (copies)")


def target_rows(scaling: Any, resource: str, dimension: str, *, unit: str = "") -> list[tuple[str, str]]:
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=dimension
    )["ScalableTargets"]
    if not targets:
        return [("Autoscaling", "not configured")]
    rows = [(f"Autoscaling min / max{unit}", f"{targets[0]['MinCapacity']} / {targets[0]['MaxCapacity']}")]
    policies = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dimension
    )["ScalingPolicies"]
    rows += [(f"Policy {policy['PolicyName']}", _policy_text(policy)) for policy in policies]
    return rows


def _policy_text(policy: dict[str, Any]) -> str:
    """Target tracking: its target and cooldowns; step scaling: its steps (the component's wake-up)."""
    if policy.get("PolicyType") == "StepScaling":
        config = policy.get("StepScalingPolicyConfiguration", {})
        steps = ", ".join(f"{step['ScalingAdjustment']:+d}" for step in config.get("StepAdjustments", []))
        return f"step {steps or 'n/a'} on its alarm, cooldown {config.get('Cooldown', 'n/a')} s"
    config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
    predefined = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
    custom = config.get("CustomizedMetricSpecification", {}).get("MetricName", "n/a")
    unit = TARGET_UNITS.get(predefined, predefined) if predefined else custom
    return (
        f"target {config.get('TargetValue', 0):g} {unit}, cooldown out "
        f"{config.get('ScaleOutCooldown', 'n/a')} s / in {config.get('ScaleInCooldown', 'n/a')} s"
    )


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
