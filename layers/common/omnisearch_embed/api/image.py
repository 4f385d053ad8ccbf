"""``POST /embed/image``: one image as multipart ``file``, a raw ``image/*`` body, or JSON.

The body's Content-Type picks the parser, so this route reads the event itself instead of
declaring a pydantic body (which would make Powertools refuse ``image/*`` and multipart).
JSON is still validated by :class:`ImageEmbedRequest`; options for multipart come from form
fields and for raw bodies from the query string (``?normalize=false&encoding=base64``).
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from omnisearch_embed.api.docs import responses
from omnisearch_embed.api.json_body import JSON_MEDIA_TYPES, event_json, event_media, json_loader
from omnisearch_embed.api.multipart import FILE_FIELD, body_bytes, parse_multipart
from omnisearch_embed.api.text import json_response
from omnisearch_embed.env import FALSE_WORDS, TRUE_WORDS
from omnisearch_embed.errors import InvalidInputError, UnsupportedMediaTypeError
from omnisearch_embed.images import MEDIA_TYPES
from omnisearch_embed.render import image_body
from omnisearch_embed.schemas import ENCODINGS, Encoding, ImageEmbedRequest, ImageEmbedResponse
from omnisearch_embed.service import EmbedService

_DESCRIPTION = (
    "Send the image as multipart/form-data field `file` (`curl -F file=@cat.png`), as a raw body with "
    '`Content-Type: image/png|jpeg|webp|gif`, or as JSON `{"image": "<base64 | data URI | s3://bucket/key>"}` '
    'or `{"s3_uri": "s3://bucket/key"}`. PNG, JPEG, WebP and GIF (first frame) only; http(s) URLs are '
    "never fetched. For multipart and raw bodies, `normalize` and `encoding` go in form fields or the query string."
)
_OPTIONS_SCHEMA = {
    "normalize": {"type": "boolean", "default": True, "description": "L2-normalise the vector"},
    "encoding": {"type": "string", "enum": list(ENCODINGS), "default": "float"},
}
_RAW_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_DECLARED_TYPES = sorted(set(MEDIA_TYPES) - {"image/jpg"})  # image/jpg is accepted, not advertised
# Powertools derives a requestBody only from a declared body parameter, which this route cannot have (it
# reads four body forms itself), so the OpenAPI request body and the raw bodies' query options are spelled
# out here; Swagger UI's "Try it out" then offers a file picker for the form and for each raw image type,
# and a JSON editor.
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    FILE_FIELD: {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP or GIF"},
                    **_OPTIONS_SCHEMA,
                },
                "required": [FILE_FIELD],
            },
            "encoding": {FILE_FIELD: {"contentType": ", ".join(_DECLARED_TYPES)}},
        },
        **{media: _RAW_IMAGE for media in _DECLARED_TYPES},
        "application/json": {"schema": ImageEmbedRequest.model_json_schema()},
    },
}
QUERY_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": "For raw image bodies"}
    for name, schema in _OPTIONS_SCHEMA.items()
]


def _options(values: dict[str, str]) -> tuple[bool, Encoding]:
    unknown = sorted(set(values) - {"normalize", "encoding"})
    if unknown:
        raise InvalidInputError(f"unknown option(s): {', '.join(unknown)}", code="invalid_option", param=unknown[0])
    normalize_raw = values.get("normalize", "true").strip().lower()
    if normalize_raw not in TRUE_WORDS | FALSE_WORDS:
        raise InvalidInputError("normalize must be true or false", code="invalid_option", param="normalize")
    encoding = values.get("encoding", "float").strip().lower()
    if encoding not in ENCODINGS:
        raise InvalidInputError(
            f"encoding must be one of {', '.join(ENCODINGS)}", code="invalid_option", param="encoding"
        )
    return normalize_raw in TRUE_WORDS, cast(Encoding, encoding)


def register_image_routes(app: APIGatewayRestResolver, service: EmbedService) -> None:
    limit = service.settings.max_request_bytes
    load_json = json_loader(limit)

    @app.post(
        "/embed/image",
        summary="Embed one image",
        description=_DESCRIPTION,
        tags=["embed"],
        responses=responses(ImageEmbedResponse),
        openapi_extensions={"requestBody": REQUEST_BODY, "parameters": QUERY_PARAMETERS},
    )
    def embed_image():
        event = app.current_event
        kind, content_type = event_media(event)
        if kind in JSON_MEDIA_TYPES:
            request = ImageEmbedRequest.model_validate(event_json(event, load_json))
            emb = service.embed_image_refs([request.ref], normalize=request.normalize, param="image")
            return json_response(image_body(emb, request.encoding))
        if kind == "multipart/form-data":
            fields = parse_multipart(body_bytes(event, max_bytes=limit), content_type)
            upload = fields.pop(FILE_FIELD, None)
            if upload is None:
                raise InvalidInputError(
                    f"send the image in a form field named '{FILE_FIELD}' (curl -F \"{FILE_FIELD}=@cat.png\")",
                    code="missing_file",
                    param=FILE_FIELD,
                )
            normalize, encoding = _options({name: part.text() for name, part in fields.items()})
            data = upload.data
        elif kind in MEDIA_TYPES:
            normalize, encoding = _options(dict(event.query_string_parameters or {}))
            data = body_bytes(event, max_bytes=limit)
        elif kind.startswith("image/"):
            raise UnsupportedMediaTypeError(
                f"{kind[:100]} is not accepted; send PNG, JPEG, WebP or GIF", code="unsupported_image_format"
            )
        else:
            raise UnsupportedMediaTypeError(
                f"Content-Type {kind[:100]} is not accepted here; send multipart/form-data, image/* or JSON",
                code="unsupported_media_type",
            )
        emb = service.embed_image_bytes([data], normalize=normalize, param=FILE_FIELD)
        return json_response(image_body(emb, encoding))
