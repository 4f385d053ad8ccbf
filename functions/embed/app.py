"""EmbedFunction: the public embed API (``/embed/*``, ``/classify``, ``/health``, ``/v1/*``) on API Gateway REST.

Shape as in Powertools' examples: singletons, then a one-line handler under the logger, tracer and
metrics decorators. The routes live in the core (``omnisearch_embed.api``) so the local server serves
exactly the same app. Settings are read and validated at import, so a wrong environment fails the
cold start; the backend and the resolver (pydantic, OpenAPI, boto3) are built on the first request,
or during init under provisioned concurrency, which keeps the cold import close to ``import boto3``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from omnisearch_embed import deadline
from omnisearch_embed.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from omnisearch_embed.backends.base import Backend
    from omnisearch_embed.service import EmbedStats

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME; request bodies are never logged
tracer = Tracer(auto_patch=False)  # only botocore is patched, when the backend is built
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE
settings = Settings.from_env()
_app: APIGatewayRestResolver | None = None


def record_embed(stats: EmbedStats) -> None:
    """Items and backend latency of one backend call as EMF metrics; ``fallback_used`` only when it happened.

    Each ``add_metric`` costs tens of microseconds, so a warm request records three (with ``requests``).
    """
    metrics.add_metric(name=f"{stats.kind}_items", unit=MetricUnit.Count, value=stats.items)
    metrics.add_metric(name="backend_latency", unit=MetricUnit.Milliseconds, value=stats.latency_ms)
    if stats.fallback:
        metrics.add_metric(name="fallback_used", unit=MetricUnit.Count, value=1)


def record_error(code: str, status: int) -> None:
    """One ``errors`` metric per error response, with the stable code as its own dimension."""
    with single_metric(
        name="errors",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="code", value=code)
        metric.add_dimension(name="status_class", value=f"{status // 100}xx")


def build_app(backend: Backend | None = None, app_settings: Settings | None = None) -> APIGatewayRestResolver:
    """The resolver around ``backend`` (default: the one the settings describe), with metrics hooks."""
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    from omnisearch_embed.api import create_app

    app_settings = app_settings if app_settings is not None else settings
    if backend is None:
        from omnisearch_embed.backends.factory import backend_from_settings

        tracer.patch(["botocore"])  # X-Ray subsegments for SageMaker and S3 calls
        backend = backend_from_settings(app_settings)
    copy_config_to_registered_loggers(source_logger=logger, include={"omnisearch_embed"})
    return create_app(backend, app_settings, on_embedded=record_embed, on_error=record_error)


def get_app() -> APIGatewayRestResolver:
    global _app
    if _app is None:
        _app = build_app()
    return _app


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency":
    get_app()  # provisioned environments are initialised ahead of traffic: pay everything now


@dataclass(frozen=True)
class NoContext:
    """What the decorators read when the handler is called without a context (scripts, tests): no deadline."""

    function_name: str = "omnisearch-embed"
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = ""
    aws_request_id: str = ""


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses are vectors: keep them out of X-Ray
@metrics.log_metrics(capture_cold_start_metric=True)
def handle(event: dict[str, Any], context: LambdaContext | NoContext) -> dict[str, Any]:
    metrics.add_metric(name="requests", unit=MetricUnit.Count, value=1)
    # One time budget for the whole request (S3 reads, every invoke, the fallback), ending before Lambda's.
    with deadline.scope(deadline.from_lambda_context(context, settings.deadline_margin_seconds)):
        return get_app().resolve(event, context)


def lambda_handler(event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
    """The Lambda entry point; ``context=None`` runs without a time budget instead of failing in the decorators."""
    return handle(event, context if context is not None else NoContext())
