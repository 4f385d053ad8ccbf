"""The four routes of Weaviate's multi2vec-clip inference contract, over the local server's EmbedService.

Contract (Weaviate's ``modules/multi2vec-clip/clients`` and the reference ``multi2vec-clip-inference``):
``POST /vectorize`` takes ``{"texts": [...], "images": [<plain base64>]}``, either key missing meaning
``[]``, and answers ``{"textVectors": [[...]], "imageVectors": [[...]]}`` in input order. Weaviate's Go
client decodes every body as JSON *before* it looks at the status, and reads ``error`` as a string, so
every answer here, errors included, is a JSON object and an error is ``{"error": "<message>", "code": ...}``.

Texts and images go through the same EmbedService as ``/embed/batch/*`` (one set of limits and error
codes) on the server's worker threads, so the backend's dynamic batching merges the one-object requests
Weaviate sends in parallel during an import. ``s3://`` references are refused: these routes take no API
key, and Weaviate only ever sends the image bytes (its blob properties are base64).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from http import HTTPStatus
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_server.sagemaker_emulation import read_body
from local_server.weaviate.readiness import Readiness
from omnisearch_embed import __version__
from omnisearch_embed.api.errors import describe_validation_errors
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import (
    EmbedError,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from omnisearch_embed.render import json_object, vectors_json
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import Settings

_logger = logging.getLogger(__name__)
Endpoint = Callable[[Any, Request], Awaitable[Response]]
# every method reaches the endpoint, which answers the wrong ones itself (Starlette's own 405 is plain text)
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class VectorizeRequest(BaseModel):
    """``POST /vectorize``. Unknown keys are ignored, as the reference container does, so a newer Weaviate
    that sends more still works; the two known keys are strict (no coercion of numbers to strings)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    texts: list[str] | None = None
    images: list[str] | None = None


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Weaviate's error shape: ``error`` must be a string (an object would fail its JSON decoding)."""
    return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


def body_limit(settings: Settings) -> int:
    """The largest body read: the base64 of a request at ``max_request_bytes``, plus room for the JSON."""
    return (settings.max_request_bytes + 2) // 3 * 4 + 64 * 1024


def _only(*methods: str) -> Callable[[Endpoint], Endpoint]:
    """Answer other methods with a Weaviate-shaped 405 instead of falling through to the public API."""
    allowed = {*methods, "HEAD"} if "GET" in methods else set(methods)

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(self: Any, request: Request) -> Response:
            if request.method not in allowed:
                message = f"{request.method} is not allowed on {request.url.path}; use {' or '.join(methods)}"
                return error_response(
                    HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message, {"allow": ", ".join(sorted(allowed))}
                )
            return await endpoint(self, request)

        return guarded

    return wrap


class WeaviateRoutes:
    """The routes for one backend; ``executor`` is the server's pool of worker threads (blocking calls run there)."""

    def __init__(self, backend: Backend, settings: Settings, executor: Executor) -> None:
        self.backend = backend
        self.settings = settings
        self.service = EmbedService(backend, settings)
        self.executor = executor
        self.readiness = Readiness(self.service, executor)

    def routes(self) -> list[Route]:
        """Starlette routes, to be placed before the public API's catch-all route."""
        return [
            Route("/.well-known/live", self.live, methods=_ANY_METHOD),
            Route("/.well-known/ready", self.ready, methods=_ANY_METHOD),
            Route("/meta", self.meta, methods=_ANY_METHOD),
            Route("/vectorize", self.vectorize, methods=_ANY_METHOD),
        ]

    # -- readiness and metadata ---------------------------------------------------------------------
    @_only("GET")
    async def live(self, request: Request) -> Response:
        return Response(status_code=HTTPStatus.NO_CONTENT)

    @_only("GET")
    async def ready(self, request: Request) -> Response:
        try:
            ready = await self.readiness.check()
        except RuntimeError:  # the worker pool is shut down: the server is stopping
            return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
        if ready:
            return Response(status_code=HTTPStatus.NO_CONTENT)
        reason = (self.readiness.last_error or {}).get("message") or "the backend has not answered a probe yet"
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", f"not ready: {reason}")

    @_only("GET")
    async def meta(self, request: Request) -> Response:
        model_id = self.backend.model_id
        name, _, pretrained = model_id.partition("/")
        limits = {
            "max_batch_items": self.settings.max_batch_items,
            "max_text_chars": self.settings.max_text_chars,
            "max_image_bytes": self.settings.max_image_bytes,
            "max_request_bytes": self.settings.max_request_bytes,
        }
        return JSONResponse(
            {
                "model": model_id,
                "model_name": name,
                "pretrained": pretrained,
                "dimension": self.readiness.dimension,  # known once the backend has embedded something
                "normalized": True,
                "service": self.backend.service,
                "ready": self.readiness.ready,
                "limits": limits,
                "server": f"omnisearch-embed {__version__}",
            }
        )

    # -- vectorize ------------------------------------------------------------------------------------
    @_only("POST")
    async def vectorize(self, request: Request) -> Response:
        try:
            parsed = await self._parse(request)
            texts, images = await self._embed(parsed)
        except EmbedError as e:  # Weaviate logs only the message: it names the item when the core knows it
            where = f"{e.param}: " if e.param and e.param not in e.message else ""
            return error_response(int(e.status), e.code, where + e.message)
        except Exception:
            _logger.exception("/vectorize failed")
            message = "the server failed to vectorize the request; see its log"
            return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", message)
        for result in (texts, images):
            if result is not None and result.count:
                self.readiness.mark_ready(result.dimension)
        body = json_object(
            {
                "textVectors": vectors_json(texts.vectors if texts else []),
                "imageVectors": vectors_json(images.vectors if images else []),
            },
            {},
        )
        return Response(body, media_type="application/json")

    async def _parse(self, request: Request) -> VectorizeRequest:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # Weaviate sends application/json; releases before 1.25 sent no content type at all.
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaTypeError(
                f"send the body as application/json, not {media_type}", code="unsupported_media_type"
            )
        limit = body_limit(self.settings)
        body = await read_body(request, limit)
        if body is None:
            raise PayloadTooLargeError(f"the request body is over the {limit}-byte limit", code="request_too_large")
        if not body.strip():
            raise InvalidInputError('the body is empty; send {"texts": [...], "images": [...]}', code="invalid_json")
        try:
            parsed = VectorizeRequest.model_validate_json(body)
        except ValidationError as e:
            errors = e.errors(include_url=False, include_input=False)
            if any(err.get("type") == "json_invalid" for err in errors):
                raise InvalidInputError("the request body is not valid JSON", code="invalid_json") from e
            message, param = describe_validation_errors(errors)
            raise UnprocessableError(message, code="validation_error", param=param) from e
        for i, ref in enumerate(parsed.images or []):
            if "://" in ref[:64]:  # never in base64; s3:// would be fetched with this keyless route's credentials
                raise InvalidInputError(
                    f"images[{i}] is a URL; /vectorize takes the image file itself, as base64",
                    code="url_not_supported",
                    param=f"images[{i}]",
                )
        return parsed

    async def _embed(self, request: VectorizeRequest) -> tuple[Embeddings | None, Embeddings | None]:
        """Texts and images side by side (they run in separate batcher lanes); an error in texts is reported first."""
        texts = self._in_thread(self.service.embed_texts, request.texts, param="texts") if request.texts else _nothing()
        images = (
            self._in_thread(self.service.embed_image_refs, request.images, param="images")
            if request.images
            else _nothing()
        )
        results = await asyncio.gather(texts, images, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return cast("tuple[Embeddings | None, Embeddings | None]", tuple(results))

    async def _in_thread(self, call: Callable[..., Embeddings], items: list[str], *, param: str) -> Embeddings:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(call, items, param=param))


async def _nothing() -> None:
    return None
