"""The model as an inference component (EndpointKind components): its name, its copies, waking and sleeping it.

The component scales to zero copies; managed instance scaling then keeps no instance, so an idle endpoint
costs nothing. The stack wakes it on the first request that finds no copy (a NoCapacityInvocationFailures
alarm adds one), and target tracking removes the last copy about ``SCALE_IN_MINUTES`` after the last
request. ``wake`` and ``sleep`` set the copy count by hand (UpdateInferenceComponentRuntimeConfig).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from omnisearch_embed.component_copies import copies_of, copy_changes
from omnisearch_embed.endpoint_status import is_not_found, iso
from omnisearch_ops.console import EXIT_FAILURE, fail
from omnisearch_ops.costs import SCALE_IN_MINUTES

KIND = "components"  # template.yaml EndpointKind
COMPONENT_SUFFIX = "-clip"


def component_name(endpoint: str) -> str:
    """The stack's inference component on ``endpoint``: the one naming rule every command and test uses."""
    return f"{endpoint}{COMPONENT_SUFFIX}"


def copies_text(count: int | None) -> str:
    """``1 copy``, ``0 copies``; ``? copies`` where AWS left the count out."""
    return f"{'?' if count is None else count} {'copy' if count == 1 else 'copies'}"


@dataclass(frozen=True)
class Copies:
    """DescribeInferenceComponent's status and copy counts (None where AWS left one out)."""

    status: str | None
    desired: int | None
    current: int | None


def describe_copies(sagemaker: Any, component: str) -> Copies | None:
    """The component's copies, or None when SageMaker has no such component (any other failure raises)."""
    try:
        answer = sagemaker.describe_inference_component(InferenceComponentName=component)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
    copies = copies_of(answer)  # the same reading as the API's /health
    return Copies(copies["status"], copies["desired"], copies["current"])


@dataclass(frozen=True)
class Wake:
    """One scaling activity that raised the copy count from 0: how long the endpoint took to answer again."""

    start: str | None
    end: str | None
    seconds: float
    copies: int


def last_wake(scaling: Any, component: str) -> Wake | None:
    """The latest successful activity that raised the copies from 0 (Application Auto Scaling keeps six weeks).

    A wake by hand (``omnisearch-deploy wake``) bypasses Application Auto Scaling and leaves no activity.
    """
    wakes = [change for change in copy_changes(scaling, component) if change.is_wake]
    if not wakes:
        return None
    latest = wakes[-1]
    return Wake(iso(latest.start), iso(latest.end), (latest.end - latest.start).total_seconds(), latest.after)


@dataclass(frozen=True)
class ComponentView:
    """What info and the monitor show of a component: its copies, the instances under them, the last wake."""

    name: str
    status: str | None
    desired_copies: int | None
    current_copies: int | None
    current_instances: int | None
    min_instances: int | None  # ManagedInstanceScaling: the instances follow the copies within this range
    max_instances: int | None
    managed_scaling: str | None
    last_wake: Wake | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def component_view(sagemaker: Any, scaling: Any, report: dict[str, Any]) -> ComponentView | None:
    """The component on the report's endpoint, or None for an endpoint that runs a model of its own.

    An endpoint that hosts inference components names no model in its variant (``model_name`` None): every
    realtime and serverless endpoint does, so they cost no extra call.
    """
    if report.get("model_name") is not None:
        return None
    endpoint = report["endpoint_name"]
    name = component_name(endpoint)
    copies = describe_copies(sagemaker, name)
    if copies is None:
        return None
    variants = sagemaker.describe_endpoint(EndpointName=endpoint).get("ProductionVariants") or [{}]
    managed = variants[0].get("ManagedInstanceScaling") or {}
    return ComponentView(
        name=name,
        status=copies.status,
        desired_copies=copies.desired,
        current_copies=copies.current,
        current_instances=variants[0].get("CurrentInstanceCount"),
        min_instances=managed.get("MinInstanceCount"),
        max_instances=managed.get("MaxInstanceCount"),
        managed_scaling=managed.get("Status"),
        last_wake=last_wake(scaling, name),
    )


def with_component(report: dict[str, Any], sagemaker: Any, scaling: Any) -> dict[str, Any]:
    """The report plus ``inference_component`` when the endpoint hosts ours; any other report is left as it is."""
    view = component_view(sagemaker, scaling, report)
    if view is not None:
        report["inference_component"] = view.to_dict()
    return report


def not_a_component_stack(component: str, config_env: str) -> str:
    """Why a command about the component found none, and how to get one."""
    return (
        f"inference component {component} does not exist: the stack's EndpointKind is probably not {KIND}"
        f" (realtime and serverless endpoints run their model without one); deploy it with"
        f" `omnisearch-deploy deploy --kind {KIND} --min-instances 0 --config-env {config_env}`"
    )


def set_copies(sagemaker: Any, endpoint: str, copies: int, *, config_env: str) -> list[str]:
    """Set the component's copy count (UpdateInferenceComponentRuntimeConfig); returns what to tell the user.

    A missing component fails (exit 1) with how to deploy one; a count already desired changes nothing.
    """
    name = component_name(endpoint)
    before = describe_copies(sagemaker, name)
    if before is None:
        fail(not_a_component_stack(name, config_env), EXIT_FAILURE)
    now = f"{copies_text(before.desired)} desired, {before.current if before.current is not None else '?'} running"
    if before.desired == copies:
        return [f"inference component {name} (endpoint {endpoint}): already {now}; nothing to change"]
    sagemaker.update_inference_component_runtime_config(
        InferenceComponentName=name, DesiredRuntimeConfig={"CopyCount": copies}
    )
    lines = [f"inference component {name} (endpoint {endpoint}): {now} -> {copies_text(copies)}"]
    if copies > (before.desired or 0):
        lines += [
            "instances follow: managed instance scaling starts the instances the new copies need (minutes)",
            f"autoscaling may scale it in again: target tracking removes idle copies about {SCALE_IN_MINUTES:g}"
            " minutes after the last request",
        ]
    else:
        lines += [
            "instances follow: managed instance scaling releases the instances no copy uses"
            + (" (no copy, no instance: idle costs $0)" if copies == 0 else ""),
            "autoscaling may scale it out again: the first request that finds no copy wakes it (a +1 copy alarm)",
        ]
    return [*lines, "watch it: omnisearch-deploy info, or omnisearch-monitor --watch"]
