"""The page to try the model on (``GET /``) and the local JSON routes behind its search.

These are Starlette routes of the local server, in front of the catch-all that feeds the Powertools app, so
they exist only where the local server runs, never in Lambda. The page itself calls the public
``POST /classify`` like any client; its search calls ``POST /index/search`` here, which embeds the query
with the same EmbedService (limits, checks, error codes) as the API and ranks the vectors of the index given
with ``--index`` (``corpus_index``).

The page and its two assets are open: a browser cannot add a key header to open a page, and they hold no
secret, never the API key. When the server has a key, the page asks for it and sends it as ``x-api-key``
with each call (thumbnails included, fetched rather than linked), and the JSON routes here check it as the
API does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from local_server.sagemaker_emulation import read_body
from model_code.tiny_shapes.shapes import COLOURS, SHAPES
from omnisearch_embed.api.errors import describe_validation_errors, error_body
from omnisearch_embed.api.json_body import json_loader, media_type
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.classify import DEFAULT_TEMPLATE
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import (
    INVALID_BODY,
    EmbedError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, Settings

if TYPE_CHECKING:  # pyarrow and numpy load only with --index
    from local_server.page.corpus_index import CorpusIndex

_logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
DEFAULT_LABELS = (*COLOURS, *SHAPES)  # what the bundled tiny-shapes model knows
# the page runs only its own script and shows images it fetched itself (blob:) or was given (data:)
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Authorize = Callable[[Request], bool]
Endpoint = Callable[[Request], Awaitable[Response]]


class MethodNotAllowedError(EmbedError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "method_not_allowed"


class SearchRequest(BaseModel):
    """``POST /index/search``: exactly one of ``text`` or ``image`` (base64, a data URI or an allowed s3://)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = None
    image: str | None = None
    k: int = Field(8, ge=1, le=100)


def error_response(path: str, error: EmbedError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(path, int(error.status), error.code, error.message), error.status, headers)


class PageRoutes:
    """The page, its config, and the index routes over one backend; ``executor`` runs the blocking calls."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        executor: Executor,
        *,
        index: CorpusIndex | None,
        authorized: Authorize,
        unauthorized: Callable[[str], Response],
    ) -> None:
        self.backend, self.settings, self.executor, self.index = backend, settings, executor, index
        self.service = EmbedService(backend, settings)
        self._authorized, self._unauthorized = authorized, unauthorized

    def routes(self) -> list[Route]:
        """Starlette routes, to be placed before the public API's catch-all route."""
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/page/config", self._json_route(self.config, "GET", keyed=False), methods=_ANY_METHOD),
            Route("/page/{name}", self.asset, methods=["GET"]),
            Route("/index", self._json_route(self.info, "GET"), methods=_ANY_METHOD),
            Route("/index/search", self._json_route(self.search, "POST"), methods=_ANY_METHOD),
            Route("/index/items/{row:int}/image", self._json_route(self.image, "GET"), methods=_ANY_METHOD),
        ]

    def _json_route(self, endpoint: Endpoint, method: str, *, keyed: bool = True) -> Endpoint:
        """The method, then the key, then ``endpoint``; every refusal is the API's JSON error shape."""
        allowed = {method, "HEAD"} if method == "GET" else {method}

        async def guarded(request: Request) -> Response:
            path = request.url.path
            if request.method not in allowed:
                error = MethodNotAllowedError(f"{request.method} is not allowed on {path}; use {method}")
                return error_response(path, error, {"allow": ", ".join(sorted(allowed))})
            if keyed and not self._authorized(request):
                return self._unauthorized(path)
            try:
                return await endpoint(request)
            except EmbedError as e:
                return error_response(path, e)
            except Exception:  # a bug or a broken backend: the log has the trace, the caller a JSON 500
                _logger.exception("%s %s failed", request.method, path)
                return error_response(path, EmbedError(f"{path} failed; see the server's log"))

        return guarded

    # -- the page ---------------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return error_response(request.url.path, NotFoundError(f"no page asset {name}", code="route_not_found"))
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers=PAGE_HEADERS)

    async def config(self, request: Request) -> Response:
        """What the page needs before its first call; nothing here needs (or reveals) the key."""
        return JSONResponse(
            {
                "model": self.backend.model_id,
                "key_required": bool(self.settings.api_key),
                "labels": list(DEFAULT_LABELS),
                "template": DEFAULT_TEMPLATE,
                "index": self.index is not None,
            }
        )

    # -- the index --------------------------------------------------------------------------------------
    def _loaded(self) -> CorpusIndex:
        if self.index is None:
            raise NotFoundError(
                "this server has no index: start it with --index FILE.parquet (written by scripts/embed_corpus.py)",
                code="index_not_loaded",
            )
        return self.index

    async def info(self, request: Request) -> Response:
        index = self._loaded()
        index.check_model(self.backend.model_id)
        return JSONResponse(index.summary())

    async def image(self, request: Request) -> Response:
        path = self._loaded().image_file(request.path_params["row"])
        return FileResponse(
            path, headers={"cache-control": "private, max-age=300", "x-content-type-options": "nosniff"}
        )

    async def search(self, request: Request) -> Response:
        index = self._loaded()
        index.check_model(self.backend.model_id)  # before any work: the answer could only be wrong
        query = await self._parse(request)
        if query.text is not None:
            emb = await self._in_thread(self.service.embed_texts, [query.text], param="text")
        else:
            emb = await self._in_thread(self.service.embed_image_refs, [query.image], param="image")
        index.check_model(emb.model, emb.dimension)
        # a product with every row, then a file check per image hit: never on the event loop
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self.executor, self._ranked, index, emb.vectors[0], query.k)
        truncated = bool(emb.truncated and emb.truncated[0])
        return JSONResponse(
            {
                "model": emb.model,
                "service": emb.service,
                "query": {"kind": "text" if query.text is not None else "image", "truncated": truncated},
                "index": index.summary(),
                "results": results,
            }
        )

    @classmethod
    def _ranked(cls, index: CorpusIndex, vector: Any, k: int) -> list[dict[str, Any]]:
        """The ``k`` best rows as the page shows them (blocking: run it in the executor)."""
        return [
            {
                "id": hit.id,
                "kind": hit.kind,
                "source": hit.source,
                "text": hit.text,
                "score": round(hit.score, 6),
                "thumbnail": cls._thumbnail(index, hit.row) if hit.kind == "image" else None,
            }
            for hit in index.search(vector, k)
        ]

    @staticmethod
    def _thumbnail(index: CorpusIndex, row: int) -> str | None:
        try:
            index.image_file(row)
        except NotFoundError:
            return None  # an s3:// source or a file that is gone: the page shows the source instead
        return f"/index/items/{row}/image"

    async def _parse(self, request: Request) -> SearchRequest:
        content_type = request.headers.get("content-type")
        if media_type(content_type) not in {"", "application/json"}:
            raise UnsupportedMediaTypeError(
                f"Content-Type {(content_type or '').strip()[:100]} is not accepted here; send application/json",
                code="unsupported_media_type",
            )
        body = await read_body(request, LAMBDA_MAX_EVENT_BYTES)
        if body is None:
            raise PayloadTooLargeError(
                f"the request body is over the {LAMBDA_MAX_EVENT_BYTES}-byte limit", code="request_too_large"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInputError("the request body is not UTF-8 text", code=INVALID_BODY) from e
        if not text.strip():
            raise UnprocessableError("the request needs a JSON body", code="validation_error")
        doc: Any = json_loader(LAMBDA_MAX_EVENT_BYTES)(text)
        try:
            query = SearchRequest.model_validate(doc)
        except ValidationError as e:
            message, param = describe_validation_errors(e.errors(include_url=False, include_input=False))
            raise UnprocessableError(message, code="validation_error", param=param) from e
        if (query.text is None) == (query.image is None):
            raise InvalidInputError('send exactly one of "text" or "image"', code="invalid_input")
        return query

    async def _in_thread(self, call: Callable[..., Embeddings], items: list[Any], *, param: str) -> Embeddings:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(call, items, param=param))
