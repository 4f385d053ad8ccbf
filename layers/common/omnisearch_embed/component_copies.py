"""How many copies of an inference component run now: what ``/health`` reports for a model that scales to zero.

``/health`` is keyless, so the control plane is asked at most once per ``ttl_seconds`` (one
DescribeInferenceComponent shared by every caller and thread); an AWS failure is reported, never raised:
the health of the data path does not hang on the control plane's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.endpoint_status import aws_error

COPIES_CACHE_SECONDS = 10.0


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
