"""``GET /health``: backend status, and with ``?deep=true`` one real embedding, timed."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from omnisearch_embed.schemas import HealthResponse
from omnisearch_embed.service import EmbedService


def register_health_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    @app.get(
        "/health",
        summary="Service health",
        description="`down` answers 503, so a load balancer or canary sees it. "
        "`deep=true` embeds one word through the model and reports the latency.",
        tags=["health"],
        responses={
            503: {"description": "The backend is down", "content": {"application/json": {"model": HealthResponse}}}
        },
    )
    def health(
        deep: Annotated[bool, Query(description="Also embed one word through the backend")] = False,
    ) -> Response[HealthResponse]:
        report = HealthResponse.model_validate(service.health(deep=deep))
        status = int(HTTPStatus.SERVICE_UNAVAILABLE if report.status == "down" else HTTPStatus.OK)
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=report.model_dump(exclude_none=True),
            headers={"Cache-Control": "no-store"},
        )
