"""The local HTTP server: Starlette routes in front of the very same Powertools app the Lambda function runs.

Every request other than the SageMaker emulation becomes the API Gateway event (``apigw_event``) and is
resolved on a worker thread. The Powertools resolver keeps per-request state on the app (and the current
event even on its base class), so each worker thread owns its own app built by ``create_app(backend,
settings)`` and pins the event on that instance; the backend (usually wrapped in a DynamicBatcher) is
shared, so concurrent requests still meet in one model call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.metadata
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local_server.apigw_event import INTERNAL_SERVER_ERROR, HttpRequest, RouteTable, from_response, to_event
from local_server.lambda_context import LambdaContext
from local_server.page import PageRoutes
from local_server.sagemaker_emulation import LocalModel, SageMakerEmulation, read_body, sigv4_scope
from local_server.weaviate import WeaviateRoutes, routes_enabled
from omnisearch_embed import deadline
from omnisearch_embed.api.errors import error_body
from omnisearch_embed.api_keys import extract_api_key
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.errors import EmbedError, PayloadTooLargeError, UnauthorizedError
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, Settings

if TYPE_CHECKING:  # pyarrow and numpy load only with an index
    from local_server.page.corpus_index import CorpusIndex

_logger = logging.getLogger(__name__)

# Answered without an API key. A browser cannot add a header when it opens a page, so Swagger UI is open: its
# Authorize dialog then sends the key with every "Try it out".
OPEN_PATHS = frozenset({"/health", "/ping", "/swagger"})
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection"}
AppFactory = Callable[[Backend, Settings], Any]


def proxy_event_builder(app: Any) -> Callable[[dict[str, Any]], Any]:
    """Powertools' private ``_to_proxy_event`` on ``app``: the one use of Powertools' internals, kept here.

    Powertools 3.37's ``resolve()`` stores the current event on the ``BaseRouter`` *class*, shared by every app
    in the process, so each worker thread pins its own event on its own app (:meth:`LocalServer.resolve`) as
    the event object the resolver itself would build; no public call builds it. A release that renames or
    drops it stops the server at start with this message, instead of every request becoming a logged 502.
    tests/local_server/test_server_routes.py starts a server on a resolver without it to keep this loud.
    """
    build = getattr(app, "_to_proxy_event", None)
    if not callable(build):
        raise RuntimeError(
            f"aws-lambda-powertools {_powertools_version()}: {type(app).__name__} has no _to_proxy_event, which "
            "the local server needs to give each worker thread its own event; install the version "
            "requirements pin, or update local_server/server.py (proxy_event_builder)"
        )
    return build


def _powertools_version() -> str:
    try:
        return importlib.metadata.version("aws-lambda-powertools")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def event_bytes(event: dict[str, Any]) -> int:
    """The size of ``event`` as the Lambda invoke carries it (JSON, UTF-8)."""
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def _error_body(path: str, error: EmbedError) -> bytes:
    """The public error shape for ``path`` (OpenAI's under /v1/), from the same function the handlers use."""
    return json.dumps(error_body(path, int(error.status), error.code, error.message, error.param)).encode()


class LocalServer:
    """Owns the worker threads and their apps; ``asgi`` is the Starlette application to serve."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        local_model: LocalModel | None = None,
        workers: int = 32,
        app_factory: AppFactory | None = None,
        weaviate: bool | None = None,
        index: CorpusIndex | None = None,
    ) -> None:
        if app_factory is None:
            from omnisearch_embed.api import create_app as app_factory
        self.backend = backend
        self.settings = settings
        self._app_factory = app_factory
        self._thread_apps = threading.local()
        first = app_factory(backend, settings)  # built now so a broken app fails at start, not per request
        proxy_event_builder(first)
        schema = first.get_openapi_schema()
        self.routes = RouteTable((schema.paths or {}).keys())
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="apigw-worker")
        self.emulation = emulation = SageMakerEmulation(local_model or _no_local_model, region=settings.aws_region)
        # Weaviate's multi2vec-clip API: keyless (Weaviate sends no key), so off by default when a key is set
        enabled = routes_enabled(weaviate, settings.api_key)
        self.weaviate = WeaviateRoutes(backend, settings, self._executor) if enabled else None
        # the page to try the model on (GET /) and its corpus search (--index): local routes, never in Lambda
        self.page = PageRoutes(
            backend, settings, self._executor, index=index, authorized=self.authorized, unauthorized=self._unauthorized
        )
        self.asgi = Starlette(
            routes=[
                Route("/ping", emulation.ping, methods=["GET"]),
                Route("/endpoints/{name}/invocations", self._guarded(emulation.invoke_endpoint), methods=["POST"]),
                Route("/invocations", self._guarded(emulation.invocations), methods=["POST"]),
                *(self.weaviate.routes() if self.weaviate else []),
                *self.page.routes(),
                Route("/{path:path}", self.handle_api, methods=_METHODS),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        # the emulated container loads its model on its first /ping or invocation, never at start: a server
        # whose API runs on SageMaker (a sidecar) must not import torch for an emulation nobody calls
        yield
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Finish the requests in progress, then stop the worker threads and the container (idempotent)."""
        self._executor.shutdown(wait=True)
        self.emulation.stop()

    # -- authentication ----------------------------------------------------------------------------
    def authorized(self, request: Request, *, sigv4: bool = False) -> bool:
        """True when no key is configured, for CORS preflights (``OPTIONS``, which API Gateway also exempts:
        browsers send them without credentials), or when x-api-key / ``Authorization: Bearer`` carries the key.

        For the SageMaker emulation (``sigv4=True``) a SigV4-signed request whose access key id is the
        API key also passes, so boto3 clients configured with ``aws_access_key_id=<key>`` get through.
        """
        key = self.settings.api_key
        if not key or request.url.path in OPEN_PATHS or (request.method == "OPTIONS" and not sigv4):
            return True
        found = extract_api_key(request.headers)
        offered = [found[0]] if found else []
        if sigv4 and (scope := sigv4_scope(request.headers.get("authorization", ""))):
            offered.append(scope[0])
        expected = key.encode()
        return any(hmac.compare_digest(value.encode(), expected) for value in offered if value)

    def _unauthorized(self, path: str) -> Response:
        error = UnauthorizedError("missing or wrong API key: send it as x-api-key or Authorization: Bearer <key>")
        return Response(
            _error_body(path, error),
            status_code=error.status,
            media_type="application/json",
            headers={"www-authenticate": 'Bearer realm="omnisearch-embed"', **self._cors_headers()},
        )

    def _cors_headers(self) -> dict[str, str]:
        """API Gateway's own error answers carry the origin too (template.yaml's GatewayResponses), so pages can
        read a 401 or 413 instead of seeing a network error."""
        origin = self.settings.cors_allow_origin
        return {"access-control-allow-origin": origin} if origin else {}

    def _too_large(self, path: str) -> Response:
        """Lambda refuses an event over 6 MB and API Gateway answers 413; the code is the template's."""
        error = PayloadTooLargeError(
            f"the request is over Lambda's {LAMBDA_MAX_EVENT_BYTES:,}-byte event limit (body, base64-encoded for "
            "binary types, plus headers); send large images as s3_uri",
            code="request_too_large",
        )
        body = _error_body(path, error)
        return Response(body, status_code=error.status, media_type="application/json", headers=self._cors_headers())

    def _guarded(self, endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def guarded(request: Request) -> Response:
            if not self.authorized(request, sigv4=True):
                return self._unauthorized(request.url.path)
            return await endpoint(request)

        return guarded

    # -- the API ------------------------------------------------------------------------------------
    def _thread_app(self) -> Any:
        app = getattr(self._thread_apps, "app", None)
        if app is None:
            app = self._thread_apps.app = self._app_factory(self.backend, self.settings)
        return app

    def resolve(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run one event through this thread's app, as the Lambda runtime would; a crash is API Gateway's 502."""
        context = LambdaContext(aws_request_id=str(uuid.uuid4()))
        try:
            app = self._thread_app()
            # instance attributes shadow the class-wide event (proxy_event_builder): this app reads only its own
            app.current_event = proxy_event_builder(app)(event)
            app.lambda_context = context
            with deadline.scope(deadline.from_lambda_context(context, self.settings.deadline_margin_seconds)):
                return from_response(app.resolve(event, context))
        except Exception:
            _logger.exception("handler raised for %s %s", event["httpMethod"], event["path"])
            return INTERNAL_SERVER_ERROR

    async def handle_api(self, request: Request) -> Response:
        """The catch-all route: HTTP -> API Gateway event -> handler (worker thread) -> HTTP."""
        path = request.url.path
        if not self.authorized(request):
            return self._unauthorized(path)
        body = await read_body(request, LAMBDA_MAX_EVENT_BYTES)
        if body is None:
            return self._too_large(path)
        http_request = HttpRequest(
            method=request.method,
            path=path,
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=body,
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        event = to_event(http_request, self.routes)
        if len(body) > LAMBDA_MAX_EVENT_BYTES // 2 and event_bytes(event) > LAMBDA_MAX_EVENT_BYTES:
            return self._too_large(path)  # base64 (binary bodies) and the headers grow the event past the limit
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self._executor, self.resolve, event)
        response = Response(payload, status_code=status)
        response.raw_headers += [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers if name not in _HOP_HEADERS
        ]
        response.raw_headers.append((b"x-amzn-requestid", event["requestContext"]["requestId"].encode("ascii")))
        return response


def _no_local_model() -> Any:
    raise RuntimeError("this server was started without a local model for the SageMaker emulation")
