"""``POST /embed/batch/text``, ``/embed/batch/image`` and the mixed ``/embed/batch``: input order kept."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from omnisearch_embed.api.docs import responses
from omnisearch_embed.api.text import json_response
from omnisearch_embed.mixed import IMAGE, TEXT, embed_mixed
from omnisearch_embed.render import batch_image_body, batch_text_body
from omnisearch_embed.schemas import (
    BatchImageRequest,
    BatchImageResponse,
    BatchTextRequest,
    BatchTextResponse,
    MixedBatchRequest,
)
from omnisearch_embed.service import EmbedService


def register_batch_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    @app.post(
        "/embed/batch/text",
        summary="Embed texts in one call",
        description="Vectors come back in input order; `truncated` has one flag per text.",
        tags=["embed"],
        responses=responses(BatchTextResponse, "The embeddings, in input order"),
    )
    def embed_batch_text(request: BatchTextRequest):
        emb = service.embed_texts(request.texts, normalize=request.normalize, param="texts")
        return json_response(batch_text_body(emb, request.encoding))

    @app.post(
        "/embed/batch/image",
        summary="Embed images in one call",
        description="Each item is base64, a data URI, or an s3:// URI in an allowed bucket; order is kept.",
        tags=["embed"],
        responses=responses(BatchImageResponse, "The embeddings, in input order"),
    )
    def embed_batch_image(request: BatchImageRequest):
        emb = service.embed_image_refs(request.images, normalize=request.normalize, param="images")
        return json_response(batch_image_body(emb, request.encoding))

    @app.post(
        "/embed/batch",
        summary="Embed texts and images in one call",
        description='Items are `{"text": ...}` or `{"image": <base64 | data URI | s3:// URI>}`; vectors come back '
        "in input order (one text call and one image call at most). `truncated` is false for images.",
        tags=["embed"],
        responses=responses(BatchTextResponse, "The embeddings, in input order"),
    )
    def embed_batch(request: MixedBatchRequest):
        items = [(TEXT, item.text) if item.text is not None else (IMAGE, str(item.image)) for item in request.items]
        emb = embed_mixed(service, items, normalize=request.normalize, param="items")
        return json_response(batch_text_body(emb, request.encoding))
