"""Every failure becomes ``{"error": {"code", "message"}}`` here, in one place, never a stack trace.

Routes and the core only *raise* (EmbedError, pydantic validation errors, Powertools' own errors);
:func:`install_error_handlers` maps each to a status and a stable code. Under ``/v1/`` the body takes
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` so the official SDKs raise their
own exception classes (``BadRequestError``, ``RateLimitError``...). Both functions call this.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from omnisearch_embed.errors import INVALID_BODY, EmbedError

logger = logging.getLogger(__name__)
OPENAI_PREFIX = "/v1/"
ErrorHook = Callable[[str, int], None]
_MAX_LISTED = 5


def openai_error_type(status: int) -> str:
    """The ``type`` OpenAI uses for a status; its SDKs pick their exception class from the status."""
    if status == HTTPStatus.UNAUTHORIZED:
        return "authentication_error"
    if status == HTTPStatus.FORBIDDEN:
        return "permission_error"
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return "rate_limit_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def error_body(path: str, status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """The public error body for ``path``: ours, or OpenAI's under ``/v1/``."""
    if path.startswith(OPENAI_PREFIX):
        return {"error": {"message": message, "type": openai_error_type(status), "param": param, "code": code}}
    return {"error": {"code": code, "message": message}}


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """``("text: Field required; foo: Extra inputs are not permitted", "text")`` from pydantic errors.

    Only locations and pydantic's generic messages are shown, never the input values.
    """
    parts: list[str] = []
    first: str | None = None
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        if first is None and where:
            first = where
        msg = str(err.get("msg") or err.get("type") or "invalid value")
        if not where and err.get("type") == "missing":
            msg = "the request needs a JSON body"
        parts.append(f"{where}: {msg}" if where else msg)
    extra = len(parts) - _MAX_LISTED
    text = "; ".join(parts[:_MAX_LISTED]) + (f"; and {extra} more" if extra > 0 else "")
    return text or "the request is invalid", first


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    """The methods some route of ``app`` answers on ``path`` (empty: no such path, a 404 rather than a 405).

    Powertools keeps no public route table, so this is the one place that reads its internals: the two lists
    ``resolve()`` itself walks. They are read without a fallback, so a Powertools release that renames them
    fails here loudly (a 500, and tests/core/api/test_errors.py) instead of turning every 405 into a 404.
    """
    routes = [*app._static_routes, *app._dynamic_routes]
    return sorted({route.method for route in routes if route.rule.match(path)})


def install_error_handlers(app: APIGatewayRestResolver, *, on_error: ErrorHook | None = None) -> None:
    """Register the handlers that turn every exception into the public error shape.

    ``on_error(code, status)`` is called once per error response (the Lambda uses it for the
    errors-by-code metric); a failing hook is logged and never changes the response.
    """

    def respond(
        status: int, code: str, message: str, param: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        path = app.current_event.path or ""
        if on_error is not None:
            try:
                on_error(code, int(status))
            except Exception:
                logger.exception("on_error hook failed")
        log = logger.warning if status >= 500 else logger.info
        log("request failed", extra={"error_code": code, "status": int(status), "path": path})
        return Response(
            status_code=int(status),
            content_type=content_types.APPLICATION_JSON,
            body=error_body(path, int(status), code, message, param),
            headers=headers,
        )

    @app.exception_handler(EmbedError)
    def _embed_error(e: EmbedError) -> Response:
        return respond(int(e.status), e.code, e.message, e.param, e.headers() or None)

    @app.exception_handler(RequestValidationError)
    def _request_validation(e: RequestValidationError) -> Response:
        message, param = describe_validation_errors(e.errors())
        # OpenAI answers schema errors with 400, and its SDKs raise BadRequestError for it.
        openai = (app.current_event.path or "").startswith(OPENAI_PREFIX)
        status = HTTPStatus.BAD_REQUEST if openai else HTTPStatus.UNPROCESSABLE_ENTITY
        return respond(status, "validation_error", message, param)

    @app.exception_handler(ValidationError)
    def _model_validation(e: ValidationError) -> Response:
        message, param = describe_validation_errors(e.errors(include_url=False, include_input=False))
        return respond(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", message, param)

    @app.exception_handler([UnicodeDecodeError, binascii.Error])
    def _undecodable_body(e: Exception) -> Response:
        return respond(HTTPStatus.BAD_REQUEST, INVALID_BODY, "the request body is not valid UTF-8 (or base64)")

    @app.not_found
    def _not_found(e: RouteNotFound) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            return respond(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{event.http_method} is not allowed on {event.path}; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return respond(HTTPStatus.NOT_FOUND, "route_not_found", f"no route {event.http_method} {event.path}")

    @app.exception_handler(ServiceError)
    def _service_error(e: ServiceError) -> Response:
        code = HTTPStatus(e.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        return respond(e.status_code, code, str(e.msg))

    @app.exception_handler(Exception)
    def _unexpected(e: Exception) -> Response:
        logger.exception("unhandled error")
        return respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error; it has been logged")
