"""``GET /swagger``: Swagger UI, and the OpenAPI document with ``?format=json``.

Powertools' ``enable_swagger`` imports its OpenAPI models (about 0.3 s) when it is *called*, which
would put that on every cold start; this route builds the same page from Powertools' public pieces
(``get_openapi_json_schema``, ``generate_swagger_html``) only when someone opens the docs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

API_KEY_HEADER = "x-api-key"


@cache
def _swagger_assets() -> tuple[str, str]:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as ui

    folder = Path(ui.__file__).parent
    return (
        (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (folder / "swagger-ui.min.css").read_text(encoding="utf-8"),
    )


def register_swagger(
    app: APIGatewayRestResolver, *, title: str, version: str, description: str, path: str = "/swagger"
) -> None:
    """Serve the API's own OpenAPI document at ``path``; the ``x-api-key`` scheme is declared globally."""

    @app.get(path, include_in_schema=False)
    def swagger():  # no return annotation: Powertools would try to validate the Response against it
        from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

        event = app.current_event
        stage = event.request_context.stage or ""
        stage_path = (event.get("requestContext") or {}).get("path") or ""
        base = f"/{stage}" if stage and stage_path.startswith(f"/{stage}/") else ""  # custom domains drop it
        spec = app.get_openapi_json_schema(
            title=title,
            version=version,
            description=description,
            servers=[Server(url=base or "/")],
            security_schemes={"apiKey": APIKey(name=API_KEY_HEADER, in_=APIKeyIn.header)},
            security=[{"apiKey": []}],
        )
        if (event.query_string_parameters or {}).get("format") == "json":
            return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=spec)
        js, css = _swagger_assets()
        html = generate_swagger_html(spec.replace("</", "<\\/"), js, css, "", None)
        return Response(status_code=200, content_type="text/html", body=html)
