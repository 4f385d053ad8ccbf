"""``POST /embed/text``."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from omnisearch_embed.api.docs import responses
from omnisearch_embed.render import text_body
from omnisearch_embed.schemas import TextEmbedRequest, TextEmbedResponse
from omnisearch_embed.service import EmbedService


def json_response(body: str) -> Response:
    """A 200 whose body is already JSON (see :mod:`omnisearch_embed.render` for why).

    Routes returning it have no return annotation, or Powertools would validate and serialise the body
    again; their OpenAPI response schema comes from ``responses=`` instead.
    """
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


def register_text_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    @app.post(
        "/embed/text",
        summary="Embed one text",
        description="Text beyond CLIP's 77 tokens is truncated by the model and flagged with `truncated: true`; "
        "text over the character limit (10,000 by default) is refused with 413 `text_too_long`.",
        tags=["embed"],
        responses=responses(TextEmbedResponse),
    )
    def embed_text(request: TextEmbedRequest):
        emb = service.embed_texts([request.text], normalize=request.normalize, param="text")
        return json_response(text_body(emb, request.encoding))
