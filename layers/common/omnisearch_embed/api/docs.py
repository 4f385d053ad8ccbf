"""OpenAPI fragments shared by the routes (what Swagger at ``/swagger`` shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from omnisearch_embed.schemas import ErrorResponse

_ERROR_SCHEMA: dict[str, Any] = {"application/json": {"model": ErrorResponse}}

ERROR_RESPONSES: dict[int, Any] = {
    status: {"description": text, "content": _ERROR_SCHEMA}
    for status, text in (
        (400, "Bad input: invalid JSON or base64, empty text or batch, a URL that is not s3://"),
        (403, "S3 bucket not in ALLOWED_S3_BUCKETS"),
        (404, "S3 object not found"),
        (413, "Over a limit: text length, batch items, request, image bytes or pixels"),
        (415, "Unsupported content type or image format"),
        (422, "Schema error, or a corrupt or truncated image"),
        (429, "Throttled; retry with backoff"),
        (502, "The model failed on this input"),
        (503, "Model endpoint unavailable"),
        (504, "Model endpoint timed out"),
    )
}


def responses(model: type[BaseModel], description: str = "The embedding") -> dict[int, Any]:
    """OpenAPI responses of a route that returns ``model`` as a pre-rendered JSON body."""
    return {200: {"description": description, "content": {"application/json": {"model": model}}}, **ERROR_RESPONSES}
