"""The serving container's HTTP side: ``GET /ping`` and ``POST /invocations`` over one dynamic batcher.

Each invocation is decoded and validated on its own (``input_fn``; images checked, and on the CPU decoded,
in the model's decode threads) before it joins a batch, so a bad body fails only its own request. The
batcher's thread runs ``predict_fn``; the event loop only parses, awaits and answers, so ``/ping`` stays
responsive while the model works. Errors are JSON ``{"code", "message"}`` with a stable code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from http import HTTPStatus
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from endpoint_server.batching import DynamicBatcher, Overloaded, ShuttingDown
from endpoint_server.model import Invocation, ModelRunner, load_inference

_logger = logging.getLogger(__name__)

JSON = "application/json"
_INLINE_BYTES = 64 * 1024  # bodies up to this size are parsed on the loop; larger ones in a thread
_INLINE_ITEMS = 8  # answers up to this many vectors are encoded on the loop
Loader = Callable[[], tuple[ModuleType, Any]]  # -> (inference module, what its model_fn returned)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    model_dir: str = "/opt/ml/model"
    max_batch_size: int = 64
    max_wait_ms: float = 5.0
    max_queue: int = 256
    max_body_bytes: int = 6 * 1024 * 1024  # InvokeEndpoint's own limit
    drain_seconds: float = 25.0  # SageMaker sends SIGKILL 30 s after SIGTERM


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"code": code, "message": message}).encode()
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _from_model_dir(model_dir: str) -> Loader:
    def load() -> tuple[ModuleType, Any]:
        inference = load_inference(model_dir)
        return inference, inference.model_fn(model_dir)

    return load


class EndpointServer:
    """Owns the model load, the batcher and the routes; ``asgi`` serves them, ``stop()`` drains."""

    def __init__(self, config: ServerConfig | None = None, *, loader: Loader | None = None,
                 on_load_failure: Callable[[BaseException], None] | None = None) -> None:  # fmt: skip
        """``on_load_failure``: called once with the error when the model cannot load (the container's entry
        point exits on it, so SageMaker sees the failure at once); without it ``/ping`` answers 503 naming it."""
        self.config = config or ServerConfig()
        self._loader = loader or _from_model_dir(self.config.model_dir)
        self._on_load_failure = on_load_failure
        self._loaded: Future[tuple[ModelRunner, DynamicBatcher[Invocation, Any]]] = Future()
        self._lock = threading.Lock()
        self._started = False
        self._decoding = 0  # invocations read but not yet queued: the batcher waits for them (loop-only writes)
        self.routes = [
            Route("/ping", self.ping, methods=["GET"]),
            Route("/invocations", self.invocations, methods=["POST"]),
        ]
        self.asgi = Starlette(routes=self.routes, lifespan=self._lifespan)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Load the model on a thread of its own (idempotent): ``/ping`` answers 503 until it is ready."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="model-load", daemon=True).start()

    def _load(self) -> None:
        try:
            inference, model = self._loader()
            runner = ModelRunner(inference, model)
            batcher = DynamicBatcher(
                runner.predict,
                max_batch_size=self.config.max_batch_size,
                max_wait_ms=self.config.max_wait_ms,
                max_queue=self.config.max_queue,
                key=runner.batch_key,
                size=lambda invocation: invocation.size,
                expected=lambda: self._decoding,
                name="invocations",
            ).start()
        except BaseException as e:
            _logger.exception("the model failed to load")
            self._loaded.set_exception(e)
            if self._on_load_failure is not None:
                self._on_load_failure(e)
            return
        _logger.info("model loaded; serving (batches up to %d items)", self.config.max_batch_size)
        self._loaded.set_result((runner, batcher))

    @property
    def batcher(self) -> DynamicBatcher[Invocation, Any] | None:
        done = self._loaded.done() and self._loaded.exception() is None
        return self._loaded.result()[1] if done else None

    def stop(self) -> None:
        """Refuse new invocations, serve the queued ones (up to ``drain_seconds``), fail the rest."""
        if (batcher := self.batcher) is not None:
            batcher.stop(self.config.drain_seconds)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.start_loading()
        yield
        await asyncio.to_thread(self.stop)

    # -- routes ---------------------------------------------------------------------------------------
    async def ping(self, _request: Request) -> Response:
        """200 once the model serves; 503 while it loads, after it failed, or while draining."""
        self.start_loading()
        if not self._loaded.done():
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "model_loading", "the model is still loading")
        if (failure := self._loaded.exception()) is not None:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "model_not_loaded", f"the model failed to load: {failure}")
        batcher = self._loaded.result()[1]
        if not batcher.running:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
        return Response(json.dumps({"status": "Healthy", "queued": batcher.queued}), media_type=JSON)

    async def invocations(self, request: Request) -> Response:
        body = await read_body(request, self.config.max_body_bytes)
        if body is None:
            limit = self.config.max_body_bytes
            return error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", f"the body is over {limit} bytes")
        return await self.invoke(body, request.headers.get("content-type", JSON), request.headers.get("accept", JSON))

    async def invoke(self, body: bytes, content_type: str, accept: str) -> Response:
        """One invocation, whole: decode and check, wait for its batch, encode in its own Accept format."""
        self.start_loading()
        try:
            runner, batcher = await asyncio.wrap_future(self._loaded)
        except Exception as e:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "model_not_loaded", f"the model failed to load: {e}")
        self._decoding += 1
        try:
            try:
                data = await self._decode(runner, body, content_type)
            finally:
                self._decoding -= 1  # before submit: the batcher it wakes must not wait for this one
            future = batcher.submit(Invocation(data, len(data.items)))
        except Overloaded as e:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded", str(e), headers={"retry-after": "1"})
        except ShuttingDown as e:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "shutting_down", str(e))
        except Exception as e:
            return self._failure(runner, e)
        try:
            prediction = await asyncio.wrap_future(future)
            if len(data.items) <= _INLINE_ITEMS:
                payload, answer_type = runner.encode(prediction, accept)
            else:
                payload, answer_type = await run_in_threadpool(runner.encode, prediction, accept)
        except ShuttingDown as e:
            return error(HTTPStatus.SERVICE_UNAVAILABLE, "shutting_down", str(e))
        except Exception as e:
            return self._failure(runner, e)
        return Response(payload, media_type=answer_type)

    async def _decode(self, runner: ModelRunner, body: bytes, content_type: str) -> Any:
        if len(body) <= _INLINE_BYTES:
            data = runner.decode(body, content_type)
        else:
            data = await run_in_threadpool(runner.decode, body, content_type)
        if data.kind == "images" and runner.pool is not None:
            checks = [runner.pool.submit(runner.check_image, i, item) for i, item in enumerate(data.items)]
            try:
                items = await asyncio.gather(*map(asyncio.wrap_future, checks))
            finally:
                for check in checks:
                    check.cancel()
            data = dataclasses.replace(data, items=list(items))
        return data

    @staticmethod
    def _failure(runner: ModelRunner, e: Exception) -> Response:
        """The caller's mistake (inference.InputError) as its 4xx; anything else is the model's 500."""
        if isinstance(e, runner.inference.InputError):
            # status and code both come from the model code's one table (clip_inputs.STATUS_BY_CODE)
            return error(getattr(e, "status_code", 400), getattr(e, "code", "invalid_input"), str(e))
        _logger.exception("invocation failed", exc_info=e)
        return error(HTTPStatus.INTERNAL_SERVER_ERROR, "model_error", f"the model failed: {type(e).__name__}: {e}")


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to exceed ``limit`` bytes (never buffered past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
