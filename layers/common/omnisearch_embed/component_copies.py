"""An inference component's copies: how many run now (``/health``), and how they changed (``/metrics``, the
operator tools' last wake-up).

``/health`` is keyless, so the control plane is asked at most once per ``ttl_seconds`` (one
DescribeInferenceComponent shared by every caller and thread); an AWS failure is reported, never raised:
the health of the data path does not hang on the control plane's. The changes come from Application Auto
Scaling's activities on the copy count (kept six weeks): a wake by hand leaves none.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.endpoint_status import aws_error, iso

COPIES_CACHE_SECONDS = 10.0
SCALABLE_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# An activity's Cause: "... triggered policy ... changing the desired capacity from 0 to 1."
_CHANGE = re.compile(r"from (\d+) to (\d+)")


def resource_id(component: str) -> str:
    """The component's Application Auto Scaling ResourceId (its copy count is the scalable dimension)."""
    return f"inference-component/{component}"


@dataclass(frozen=True)
class CopyChange:
    """One successful scaling activity on the copy count: from ``before`` to ``after`` copies."""

    start: datetime
    end: datetime
    before: int
    after: int

    @property
    def is_wake(self) -> bool:
        return self.before == 0 and self.after > 0

    def to_dict(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "from": self.before, "to": self.after}


def copy_changes(scaling: Any, component: str, *, since: datetime | None = None) -> list[CopyChange]:
    """The successful copy-count changes (oldest first), those that ended at or after ``since`` if given."""
    changes: list[CopyChange] = []
    pages = scaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="sagemaker", ResourceId=resource_id(component), ScalableDimension=SCALABLE_DIMENSION
    )
    for page in pages:
        for activity in page.get("ScalingActivities", []):
            found = _CHANGE.search(activity.get("Cause", ""))
            end = activity.get("EndTime")
            if found is None or activity.get("StatusCode") != "Successful" or end is None:
                continue
            if since is None or end >= since:
                changes.append(CopyChange(activity["StartTime"], end, int(found.group(1)), int(found.group(2))))
    return sorted(changes, key=lambda change: change.start)


def copies_of(description: dict[str, Any]) -> dict[str, Any]:
    """DescribeInferenceComponent's answer -> ``{"current", "desired", "status"}`` (None where AWS left one out)."""
    runtime = description.get("RuntimeConfig") or {}
    return {
        "current": runtime.get("CurrentCopyCount"),
        "desired": runtime.get("DesiredCopyCount"),
        "status": description.get("InferenceComponentStatus"),
    }


class ComponentCopies:
    """The copy count of ``name``, read through ``client_factory()`` (a ``sagemaker`` client, built on first use)."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        name: str,
        *,
        ttl_seconds: float = COPIES_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self._client_factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._last: dict[str, Any] | None = None

    def read(self) -> dict[str, Any]:
        """The copies as of at most ``ttl_seconds`` ago, or ``{"error": {...}}`` when AWS did not answer."""
        with self._lock:
            if self._last is None or self._clock() - self._read_at >= self.ttl_seconds:
                self._last, self._read_at = self._describe(), self._clock()
            return dict(self._last)

    def _describe(self) -> dict[str, Any]:
        try:
            if self._client is None:
                self._client = self._client_factory()
            return copies_of(self._client.describe_inference_component(InferenceComponentName=self.name))
        except (ClientError, BotoCoreError) as error:
            return {"error": aws_error(error, "DescribeInferenceComponent").to_dict()}


def component_report(sagemaker: Any, scaling: Any, component: str, *, since: datetime) -> dict[str, Any]:
    """``/metrics``' view of the component: its copies now and every change since ``since`` (errors reported)."""
    report: dict[str, Any] = {"name": component}
    try:
        report.update(copies_of(sagemaker.describe_inference_component(InferenceComponentName=component)))
        report["changes"] = [change.to_dict() for change in copy_changes(scaling, component, since=since)]
    except (ClientError, BotoCoreError) as error:
        report["error"] = aws_error(error, "reading the inference component").to_dict()
    return report
