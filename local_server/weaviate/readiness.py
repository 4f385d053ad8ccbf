"""``/.well-known/ready``: true once one real embedding has gone through the backend, then cached.

Weaviate polls ready every second with a 500 ms timeout while it starts, and never again afterwards.
So a poll never waits for the model: the first poll starts one probe (the service's deep health check,
one text through the whole path, the batcher included) on a worker thread and waits for it at most
``wait_s``; later polls only read the cached answer, and start a new probe (at most one in flight, at
most one per ``retry_s``) until one succeeds. A successful ``/vectorize`` counts as a probe too.

One rule for every backend: for the local model it proves the model is loaded and its thread is up;
in SageMaker mode it proves what an ``InService`` status would not (that this process has credentials,
a route to the endpoint and a model that answers) and needs no ``sagemaker:DescribeEndpoint`` permission.
Once true it stays true: a later outage is reported by ``/vectorize`` itself (503/504 with a reason),
which is where Weaviate looks after it has started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor
from typing import Any

from omnisearch_embed.service import EmbedService

_logger = logging.getLogger(__name__)


class Readiness:
    """The cached readiness of one service; every method runs on the event loop, so no lock is needed."""

    def __init__(
        self, service: EmbedService, executor: Executor, *, wait_s: float = 0.25, retry_s: float = 1.0
    ) -> None:
        self.service = service
        self.executor = executor
        self.wait_s = wait_s
        self.retry_s = retry_s
        self.ready = False
        self.dimension: int | None = None
        self.last_error: dict[str, Any] | None = None
        self._probe: asyncio.Future[dict[str, Any]] | None = None
        self._probe_started = float("-inf")

    def mark_ready(self, dimension: int) -> None:
        """A request embedded successfully: the backend can embed."""
        self.ready = True
        self.dimension = dimension
        self.last_error = None

    async def check(self) -> bool:
        """The cached answer; while not ready, also (re)start a probe and give it ``wait_s`` to finish."""
        if self.ready:
            return True
        probe = self._probe
        if probe is None or (probe.done() and time.monotonic() - self._probe_started >= self.retry_s):
            probe = self._start_probe()
        if not probe.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(probe), self.wait_s)
        return self.ready

    def _start_probe(self) -> asyncio.Future[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        self._probe_started = time.monotonic()
        self._probe = loop.run_in_executor(self.executor, self._run_probe)
        self._probe.add_done_callback(self._probe_done)
        return self._probe

    def _run_probe(self) -> dict[str, Any]:
        report = self.service.health(deep=True)  # catches every failure and reports it as data
        return dict(report.get("deep") or {})

    def _probe_done(self, probe: asyncio.Future[dict[str, Any]]) -> None:
        if probe.cancelled():
            return
        if (error := probe.exception()) is not None:  # health() itself failed: a bug, never a reason to crash
            _logger.error("readiness probe raised", exc_info=error)
            self.last_error = {"code": "internal_error", "message": "the readiness probe raised"}
            return
        result = probe.result()
        if result.get("ok"):
            self.mark_ready(int(result["dimension"]))
            _logger.info("backend ready: %s answered a probe embedding", self.service.model_id)
        else:
            self.last_error = result.get("error") or {"code": "not_ready", "message": "the probe failed"}
            _logger.warning("backend not ready yet: %s", self.last_error.get("message"))
