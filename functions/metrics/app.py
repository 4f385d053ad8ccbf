"""GET /metrics: what serves the model, its status and CloudWatch figures over the last N hours.

Thin on purpose: the queries live in the core (omnisearch_embed.endpoint_metrics, shared with the monitor
script, so the dashboard and the API never disagree; omnisearch_embed.function_metrics for a stack whose
model is the model function, ENDPOINT_KIND=function).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from omnisearch_embed.api.errors import install_error_handlers
from omnisearch_embed.component_copies import component_report
from omnisearch_embed.endpoint_metrics import endpoint_report
from omnisearch_embed.errors import BackendUnavailableError
from omnisearch_embed.function_metrics import function_report
from omnisearch_embed.metrics_window import MAX_HOURS, MIN_HOURS, utc_now
from omnisearch_embed.settings import Settings

tracer = Tracer()
logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_error_handlers(app)


@dataclass(frozen=True)
class Deps:
    endpoint_name: str
    sagemaker: Any
    cloudwatch: Any
    function_name: str = ""  # set when the model function serves (ENDPOINT_KIND=function): no endpoint
    lambda_client: Any = None
    component_name: str = ""  # set when the endpoint hosts the model as an inference component
    scaling: Any = None  # application-autoscaling: the component's copy changes


@lru_cache(maxsize=1)
def deps() -> Deps:
    """Settings and clients, built on the first request and kept for the container's life."""
    settings = Settings.from_env()
    session = boto3.session.Session(region_name=settings.aws_region)
    if settings.serves_from_function:
        function = settings.model_function_name
        return Deps("", None, session.client("cloudwatch"), function, session.client("lambda"))
    component = settings.sagemaker_inference_component_name
    return Deps(
        settings.sagemaker_endpoint_name,
        session.client("sagemaker"),
        session.client("cloudwatch"),
        component_name=component,
        scaling=session.client("application-autoscaling") if component else None,
    )


@app.get("/metrics")
def get_metrics(
    hours: Annotated[int, Query(ge=MIN_HOURS, le=MAX_HOURS, description="window: the last N hours")] = 1,
    series: Annotated[bool, Query(description="include the per-period time series")] = False,
) -> dict[str, Any]:
    """Status and figures for what serves this stack (never another's: the name comes from the environment)."""
    d = deps()
    if d.function_name:
        with tracer.provider.in_subsegment("function_report"):
            return function_report(
                d.function_name,
                lambda_client=d.lambda_client,
                cloudwatch=d.cloudwatch,
                hours=hours,
                include_series=series,
            )
    if not d.endpoint_name:
        raise BackendUnavailableError("SAGEMAKER_ENDPOINT_NAME is not set", code="endpoint_not_configured")
    with tracer.provider.in_subsegment("endpoint_report"):
        report = endpoint_report(
            d.endpoint_name, sagemaker=d.sagemaker, cloudwatch=d.cloudwatch, hours=hours, include_series=series
        )
    if d.component_name:  # a model that scales to zero: its copies now and how they changed in the window
        since = utc_now() - timedelta(hours=hours)
        report["inference_component"] = component_report(d.sagemaker, d.scaling, d.component_name, since=since)
    return report


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
