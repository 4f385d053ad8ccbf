"""OpenAI-compatible ``/v1/embeddings`` and ``/v1/models`` on the same :class:`EmbedService`.

Errors under ``/v1/`` take OpenAI's shape (see :mod:`omnisearch_embed.api.errors`), so the official
SDKs raise their own classes. Model aliases: the served id (``ViT-B-32/openai``) and its architecture
name (``ViT-B-32``), compared case-insensitively; anything else is 404 ``model_not_found``, because
vectors of two models must never meet in one index.

``modality: auto`` decides per input, on the input without its surrounding whitespace: one starting with
``data:image/`` or ``s3://`` (any case) is an image; an http(s) URL (no spaces) is refused with 400
``url_not_supported`` and bare base64 of a PNG/JPEG/GIF/WebP file with 400 ``invalid_image_reference``
(both would otherwise be embedded as text, truncated to 77 tokens, without a word); anything else is text.
"""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from omnisearch_embed.api.docs import ERROR_RESPONSES, responses
from omnisearch_embed.api.text import json_response
from omnisearch_embed.errors import InvalidInputError, NotFoundError
from omnisearch_embed.images import bare_base64_image
from omnisearch_embed.mixed import IMAGE, TEXT, embed_mixed
from omnisearch_embed.openai_schemas import (
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIModel,
    OpenAIModelList,
)
from omnisearch_embed.render import openai_embeddings_body
from omnisearch_embed.service import EmbedService

IMAGE_PREFIXES = ("data:image/", "s3://")
_WEB_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def _is_image_ref(item: str) -> bool:
    return item.strip()[:11].lower().startswith(IMAGE_PREFIXES)


def auto_kind(item: str, where: str) -> str:
    """What ``modality: auto`` makes of one input (see the module docstring): ``image`` or ``text``, or a 400."""
    if _is_image_ref(item):
        return IMAGE
    stripped = item.strip()
    if _WEB_URL.fullmatch(stripped):
        raise InvalidInputError(
            f"{where} is a web URL: URLs are not fetched, and embedding one as text is not what it means; send "
            "the image as a data:image/...;base64 URI or an s3:// URI in an allowed bucket",
            code="url_not_supported",
            param=where,
        )
    fmt = bare_base64_image(stripped)
    if fmt is not None:
        raise InvalidInputError(
            f"{where} looks like bare base64 {fmt.upper()} image data; with modality 'auto' an image is a data URI "
            f"(data:image/{fmt};base64,<data>) or an s3:// URI, so it would have been embedded as text",
            code="invalid_image_reference",
            param=where,
        )
    return TEXT


def model_aliases(model_id: str) -> set[str]:
    """Names a client may send for the served model."""
    return {model_id.lower(), model_id.split("/", 1)[0].lower()}


def _check_model(requested: str, served: str) -> None:
    if requested.strip().lower() not in model_aliases(served):
        raise NotFoundError(
            f"The model '{requested[:100]}' does not exist here; this service embeds with '{served}'",
            code="model_not_found",
            param="model",
        )


def _inputs(request: OpenAIEmbeddingRequest) -> list[str]:
    raw = request.input
    items = [raw] if isinstance(raw, str) else list(raw)
    if any(not isinstance(item, str) for item in items):
        raise InvalidInputError(
            "Token arrays are not supported: send strings; CLIP tokenizes them itself",
            code="token_input_not_supported",
            param="input",
        )
    if request.modality == "image":
        for i, item in enumerate(items):
            if not _is_image_ref(item):
                raise InvalidInputError(
                    f"input[{i}] must be a data:image/...;base64,... URI or an s3:// URI when modality is 'image'",
                    code="invalid_image_reference",
                    param=f"input[{i}]",
                )
    return items  # type: ignore[return-value]


def register_openai_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    @app.post(
        "/v1/embeddings",
        summary="OpenAI-compatible embeddings",
        description="Texts; images with `modality: image`; both in one list with `modality: auto` (inputs "
        "starting with data:image/ or s3:// are images; a web URL or bare base64 image data is refused, the rest "
        "is text). Errors use OpenAI's error shape.",
        tags=["openai"],
        responses=responses(OpenAIEmbeddingResponse, "The embeddings, in input order"),
    )
    def create_embeddings(request: OpenAIEmbeddingRequest):
        _check_model(request.model, service.model_id)
        items = _inputs(request)
        if request.modality == "auto":
            service.check_count(len(items), "input")
            kinds = [auto_kind(item, f"input[{i}]") for i, item in enumerate(items)]
            emb = embed_mixed(service, list(zip(kinds, items, strict=True)), param="input")
        elif request.modality == "image":
            emb = service.embed_image_refs(items, param="input")
        else:
            emb = service.embed_texts(items, param="input")
        if request.dimensions is not None and request.dimensions != emb.dimension:
            # the model's own dimension changes nothing and is accepted with every encoding, int8 included
            int8 = request.encoding_format == "int8"
            raise InvalidInputError(
                f"dimensions={request.dimensions} is not available: {emb.model} gives {emb.dimension}-d vectors, "
                "and CLIP vectors cannot be shortened meaningfully"
                + (" (nor their int8 values, scaled per whole vector)" if int8 else "")
                + f"; omit dimensions or send {emb.dimension}",
                code="int8_with_dimensions" if int8 else "unsupported_dimensions",
                param="dimensions",
            )
        return json_response(openai_embeddings_body(emb, request.encoding_format))

    @app.get("/v1/models", summary="The served model, OpenAI's list shape", tags=["openai"])
    def list_models() -> OpenAIModelList:
        return OpenAIModelList(data=[OpenAIModel(id=service.model_id)])

    @app.get("/v1/models/<model_id>", summary="One model", tags=["openai"], responses=ERROR_RESPONSES)
    def retrieve_model(model_id: str) -> OpenAIModel:
        _check_model(model_id, service.model_id)
        return OpenAIModel(id=service.model_id)
