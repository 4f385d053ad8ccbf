"""JSON request bodies: the only body a route with a pydantic request model reads, under any Content-Type.

Powertools' request validation picks a body parser by Content-Type: ``application/x-www-form-urlencoded``
and ``multipart/form-data`` become forms (its multipart parser raises a bare ``ValueError``, a 500, for a
missing boundary or a text body outside latin-1), and a differently cased ``Application/JSON`` is refused
although media types are case-insensitive. Every declared body in this API is a pydantic model read from
JSON, so :class:`JsonBodyValidation` reads JSON or answers 415 before any parser runs; the rest of
Powertools' validation (query, path, the model itself) is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from omnisearch_embed.errors import (
    INVALID_JSON,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

JSON_MEDIA_TYPES = frozenset({"", "application/json"})


def media_type(content_type: str | None) -> str:
    """``image/png`` from ``Image/PNG; q=1``: the lower-cased type without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def json_loader(max_bytes: int) -> Callable[[str], Any]:
    """A ``json_body_deserializer``: refuses an oversized body before parsing, and any unparsable one with 400.

    ``json.loads`` raises ``JSONDecodeError`` for bad syntax, ``ValueError`` for an integer of more than 4,300
    digits and ``RecursionError`` for deep nesting; all three are the body's fault.
    """

    def load(body: str) -> Any:
        if len(body) > max_bytes or (len(body) * 4 > max_bytes and len(body.encode("utf-8", "replace")) > max_bytes):
            raise PayloadTooLargeError(f"the request body is over the {max_bytes}-byte limit", code="request_too_large")
        try:
            return json.loads(body)
        except json.JSONDecodeError as e:  # its position, never the input
            where = f"line {e.lineno}, column {e.colno}: {e.msg}"
            raise InvalidInputError(f"the request body is not valid JSON ({where})", code=INVALID_JSON) from e
        except RecursionError as e:
            raise InvalidInputError("the request body is JSON nested too deeply", code=INVALID_JSON) from e
        except ValueError as e:
            raise InvalidInputError(f"the request body is not usable JSON ({e})", code=INVALID_JSON) from e

    return load


def missing_body() -> UnprocessableError:
    """What a route that needs a JSON object answers for an empty body (Powertools' own wording, as 422)."""
    return UnprocessableError("the request needs a JSON body", code="validation_error")


def event_media(event: BaseProxyEvent) -> tuple[str, str]:
    """``(media type, raw Content-Type)`` of a request: the first picks the body parser, the second has the boundary."""
    content_type = event.headers.get("content-type") or ""
    return media_type(content_type), content_type


def event_json(event: BaseProxyEvent, load: Callable[[str], Any]) -> Any:
    """The JSON of a route that reads its body itself (it also takes uploads): ``load``ed, or 422 when empty."""
    body = event.decoded_body
    if not body:
        raise missing_body()
    return load(body)


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation with JSON as the only body type (see the module docstring)."""

    def _get_body(self, app: Any) -> Any:
        content_type = app.current_event.headers.get("content-type")
        if media_type(content_type) not in JSON_MEDIA_TYPES:
            shown = (content_type or "").strip()[:100]
            raise UnsupportedMediaTypeError(
                f"Content-Type {shown} is not accepted here; send application/json", code="unsupported_media_type"
            )
        return app.current_event.json_body


def install_json_bodies(app: APIGatewayRestResolver) -> None:
    """Make ``app`` (built with ``enable_validation=True``) read declared bodies with :class:`JsonBodyValidation`.

    Powertools has no public hook for the body parser, so this is the one place that relies on two of its
    internals: the resolver keeps its request validation in ``_request_validation_middleware`` (each route's
    middleware stack takes it from there on the route's first call), and that middleware reads bodies through
    ``_get_body``. Both are checked here, so a Powertools release that moves either fails when the app is built
    rather than quietly parsing forms again (tests/core/api/test_json_body.py pins the resulting 415).
    """
    if not callable(getattr(OpenAPIRequestValidationMiddleware, "_get_body", None)):
        raise RuntimeError("this Powertools release no longer reads request bodies through _get_body")
    if not hasattr(app, "_request_validation_middleware"):
        raise ValueError("the app must be built with enable_validation=True")
    app._request_validation_middleware = JsonBodyValidation()
