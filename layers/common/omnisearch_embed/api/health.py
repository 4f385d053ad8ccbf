"""``GET /health``: backend status, and with ``?deep=true`` one real embedding, timed.

``/health`` is keyless (load balancers, canaries), and API Gateway cannot ask a key of one query string of
a keyless method, so the deep variant is cached instead of locked: one probe per backend per
``DEEP_HEALTH_CACHE_SECONDS`` (10 s by default), shared by every caller and thread of the process, with
concurrent callers waiting for the probe in flight rather than starting their own. Anyone hammering it then
costs the endpoint at most one InvokeEndpoint per warm function instance per period, and the answer says
how old it is (``Age``).
"""

from __future__ import annotations

import threading
import time
import weakref
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from omnisearch_embed.schemas import HealthResponse
from omnisearch_embed.service import EmbedService


class DeepHealthCache:
    """The last deep report and when it was made; ``get`` probes at most once per ``ttl`` seconds."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._made_at = 0.0
        self._report: dict[str, Any] | None = None

    def get(self, probe: Any) -> tuple[dict[str, Any], float]:
        """``(report, age in seconds)``; callers arriving during a probe wait for its result."""
        with self._lock:
            age = time.monotonic() - self._made_at
            if self._report is None or age >= self.ttl:
                self._report = probe()
                self._made_at, age = time.monotonic(), 0.0
            return self._report, age


_caches: weakref.WeakKeyDictionary[Any, DeepHealthCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def deep_health_cache(service: EmbedService) -> DeepHealthCache:
    """One cache per backend object: the local server's per-thread apps share their backend, so they share it."""
    with _caches_lock:
        cache = _caches.get(service.backend)
        if cache is None or cache.ttl != service.settings.deep_health_cache_seconds:
            cache = _caches[service.backend] = DeepHealthCache(service.settings.deep_health_cache_seconds)
        return cache


def register_health_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    cache = deep_health_cache(service)

    @app.get(
        "/health",
        summary="Service health",
        description="`down` answers 503, so a load balancer or canary sees it. "
        "`deep=true` embeds one word through the model and reports the latency; that result is shared "
        "for a few seconds (the `Age` header says how old it is).",
        tags=["health"],
        responses={
            503: {"description": "The backend is down", "content": {"application/json": {"model": HealthResponse}}}
        },
    )
    def health(
        deep: Annotated[bool, Query(description="Also embed one word through the backend")] = False,
    ) -> Response[HealthResponse]:
        headers = {"Cache-Control": "no-store"}
        if deep:
            raw, age = cache.get(lambda: service.health(deep=True))
            headers["Age"] = str(int(age))
        else:
            raw = service.health(deep=False)
        report = HealthResponse.model_validate(raw)
        status = int(HTTPStatus.SERVICE_UNAVAILABLE if report.status == "down" else HTTPStatus.OK)
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=report.model_dump(exclude_none=True),
            headers=headers,
        )
