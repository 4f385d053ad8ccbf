"""The repository's one SageMaker runtime front: InvokeEndpoint forwarded to a serving container.

The container is endpoint_server's EndpointServer mounted in process over the local model (``SageMakerEmulation``,
what the local server serves), or any container that speaks SageMaker's contract over HTTP (``HttpContainer``:
a process such as the toolkit's TorchServe, or a Docker container run as SageMaker runs it), so what the tests
prove against the front is the container's code. ``POST /endpoints/{name}/invocations`` answers as
``runtime.sagemaker.<region>.amazonaws.com`` does, so ``boto3.client("sagemaker-runtime",
endpoint_url="http://127.0.0.1:8000")`` and with it SageMakerBackend work unchanged: a container 4xx/5xx
becomes HTTP 424 ``x-amzn-ErrorType: ModelError`` with ``OriginalStatusCode`` and ``OriginalMessage`` (the
container's JSON ``{"code", "message"}`` body), so botocore raises ``ModelError`` with the fields it models.

An endpoint that hosts its model as inference components (``components``) routes each invocation by the
``InferenceComponentName`` boto3 sends, and a component at 0 copies answers SageMaker's "no capacity"
ValidationError; the first such answer starts its wake (as the stack's alarm on NoCapacityInvocationFailures
does) and a copy is up ``wake_seconds`` later.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from endpoint_server.app import EndpointServer, ServerConfig, read_body
from local_server.apigw_event import ACCOUNT_ID
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

_logger = logging.getLogger(__name__)

__all__ = [
    "ERROR_NAMESPACE",
    "VARIANT",
    "HttpContainer",
    "InferenceComponent",
    "LocalModel",
    "RuntimeFront",
    "SageMakerEmulation",
    "error_headers",
    "model_error",
    "model_error_body",
    "read_body",
    "sigv4_scope",
]

VARIANT = "AllTraffic"
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/")
LocalModel = Callable[[], Any]  # returns a LocalClipBackend (has .container()); built lazily, once


def sigv4_scope(authorization: str) -> tuple[str, str] | None:
    """``(access key id, region)`` from a SigV4 ``Authorization`` header, else ``None``."""
    found = _CREDENTIAL.search(authorization) if authorization.startswith("AWS4-HMAC-SHA256") else None
    return (found.group(1), found.group(2)) if found else None


def error_headers(error_type: str, request_id: str) -> dict[str, str]:
    """The runtime's error headers: botocore reads the error code from ``x-amzn-ErrorType`` up to the colon."""
    headers = {"x-amzn-RequestId": request_id}
    if error_type:
        headers["x-amzn-ErrorType"] = f"{error_type}:{ERROR_NAMESPACE}"
    return headers


def _aws_error(status: int, error_type: str, body: dict[str, Any], request_id: str) -> Response:
    return Response(json.dumps(body), status_code=status, headers=error_headers(error_type, request_id),
                    media_type="application/json")  # fmt: skip


def model_error_body(original_status: int, original: str, endpoint: str, region: str) -> dict[str, Any]:
    """The runtime's JSON when the container answered ``original_status`` with body ``original``."""
    side = "client" if 400 <= original_status < 500 else "server"  # no answer at all (0) is a server error
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
        "Message": (
            f'Received {side} error ({original_status}) from primary with message "{original}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={log_group}"
            f" in account {ACCOUNT_ID} for more information."
        ),
        "OriginalMessage": original,
        "OriginalStatusCode": original_status,
    }


def model_error(original_status: int, original: str, endpoint: str, region: str, request_id: str) -> Response:
    """The runtime's answer when the container failed: 424 ModelError carrying the container's status and body."""
    body = model_error_body(original_status, original, endpoint, region)
    return _aws_error(HTTPStatus.FAILED_DEPENDENCY, "ModelError", body, request_id)


def _container_code(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    return str(doc.get("code", "")) if isinstance(doc, dict) else ""


# What the runtime reports when the container gave no HTTP answer (its status is then 0), by what happened:
# no answer in time, a connection that could not be made, or one the container dropped. Each is a ModelError
# with status 0, so the core's code (502 model_error) is the same; only the message says which.
NO_ANSWER = "Your invocation timed out while waiting for a response from container primary."
REFUSED = "Could not connect to container primary: the connection was refused (is it listening on {where}?)."
UNREACHABLE = "Could not connect to container primary at {where}: {reason}."
CLOSED = "Container primary closed the connection before sending a complete response ({reason})."


def no_answer(error: OSError | http.client.HTTPException, where: str) -> str:
    """The runtime's message for a container that gave no HTTP answer, worded by what happened."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if isinstance(error, TimeoutError):
        return NO_ANSWER
    if isinstance(error, ConnectionRefusedError):
        return REFUSED.format(where=where)
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.HTTPException)):
        return CLOSED.format(reason=reason)  # RemoteDisconnected is both a reset and an HTTPException
    return UNREACHABLE.format(where=where, reason=reason)


class HttpContainer:
    """A serving container reached over HTTP: a process or a Docker container (SageMaker's /invocations)."""

    def __init__(self, url: str, *, timeout_seconds: float = 60.0) -> None:
        target = urllib.parse.urlsplit(url)
        self._host, self._port, self.timeout_seconds = (
            target.hostname or "127.0.0.1",
            target.port or 80,
            timeout_seconds,
        )

    async def invoke(self, body: bytes, content_type: str, accept: str) -> Response:
        return await asyncio.to_thread(self._post, body, content_type, accept)

    def _post(self, body: bytes, content_type: str, accept: str) -> Response:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_seconds)
        headers = {"Content-Type": content_type, "Accept": accept}
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            return Response(payload, status_code=answer.status, media_type=answer.getheader("Content-Type"))
        except (OSError, http.client.HTTPException) as error:  # timed out, refused, reset: no HTTP answer
            _logger.warning("container %s:%d gave no answer: %r", self._host, self._port, error)
            message = no_answer(error, f"{self._host}:{self._port}")
            return Response(message.encode(), status_code=0, media_type="text/plain")
        finally:
            connection.close()


# InvokeEndpoint's words, as SageMaker answers them (HTTP 400, ValidationError).
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if "
    "configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)
COMPONENT_REQUIRED = (
    "Inference Component Name header is required for endpoints to which you plan to deploy inference components. "
    "Please include Inference Component Name header or consider using SageMaker models."
)
COMPONENT_HEADER = "x-amzn-sagemaker-inference-component"


class InferenceComponent:
    """One model copy set on the endpoint: ``copies`` of ``container``; at 0 the first refused call wakes it."""

    def __init__(
        self, container: Any, *, copies: int = 1, wake_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.container = container
        self.wake_seconds = wake_seconds
        self.refused = 0  # invocations answered "no capacity"
        self._copies = copies
        self._clock = clock
        self._lock = threading.Lock()
        self._wake_at: float | None = None

    @property
    def copies(self) -> int:
        with self._lock:
            if self._copies == 0 and self._wake_at is not None and self._clock() >= self._wake_at:
                self._copies, self._wake_at = 1, None
            return self._copies

    def scale_to(self, copies: int) -> None:
        """What UpdateInferenceComponentRuntimeConfig (or a scale-in) does: ``copies`` now, no wake pending."""
        with self._lock:
            self._copies, self._wake_at = copies, None

    def refuse(self) -> None:
        """A call met no copy: the first one starts the wake, later ones wait for it."""
        with self._lock:
            self.refused += 1
            if self._wake_at is None:
                self._wake_at = self._clock() + self.wake_seconds


class RuntimeFront:
    """``InvokeEndpoint`` in front of ``container`` (anything with ``async invoke(body, content_type, accept)``),
    or, for an endpoint of inference components, in front of ``components`` by name."""

    def __init__(
        self,
        container: Any = None,
        *,
        region: str = "us-east-1",
        components: Mapping[str, InferenceComponent] | None = None,
    ) -> None:
        if (container is None) == (components is None):
            raise ValueError("an endpoint serves one container or inference components, not both")
        self._region = region
        self.container = container
        self.components = dict(components or {})

    @property
    def asgi(self) -> Starlette:
        """The front alone as an app (the local server mounts ``invoke_endpoint`` among its own routes)."""
        return Starlette(routes=[Route("/endpoints/{name}/invocations", self.invoke_endpoint, methods=["POST"])])

    async def invoke_endpoint(self, request: Request) -> Response:
        """``POST /endpoints/{name}/invocations``: any endpoint name is served by the one container."""
        endpoint, request_id = request.path_params["name"], str(uuid.uuid4())
        region = (sigv4_scope(request.headers.get("authorization", "")) or ("", self._region))[1]
        body = await read_body(request, SAGEMAKER_MAX_PAYLOAD_BYTES)
        if body is None:  # the runtime's answer to an oversized invocation (no error type: botocore says "413")
            message = f"HTTP content length exceeded {SAGEMAKER_MAX_PAYLOAD_BYTES} bytes."
            return _aws_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "", {"message": message}, request_id)
        content_type = request.headers.get("content-type", "application/octet-stream")
        accept = request.headers.get("accept", "application/json")
        container = self._route(request.headers.get(COMPONENT_HEADER))
        if isinstance(container, str):  # refused, as SageMaker words it
            _logger.info("endpoint %s: %s", endpoint, container)
            return _aws_error(HTTPStatus.BAD_REQUEST, "ValidationError", {"message": container}, request_id)
        answer = await container.invoke(body, content_type, accept)
        payload = bytes(answer.body)
        if answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE and _container_code(payload) == "model_not_loaded":
            _logger.error("endpoint %s: %s", endpoint, payload.decode(errors="replace"))
            return _aws_error(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", json.loads(payload), request_id)
        if not 200 <= answer.status_code < 300:
            _logger.info("endpoint %s: container answered %d %s", endpoint, answer.status_code, payload[:200])
            original = payload.decode("utf-8", errors="replace")
            return model_error(answer.status_code, original, endpoint, region, request_id)
        headers = {"x-amzn-RequestId": request_id, "x-Amzn-Invoked-Production-Variant": VARIANT}
        return Response(payload, media_type=answer.media_type, headers=headers)

    def _route(self, component: str | None) -> Any:
        """The container that serves this invocation, or the ValidationError's message when none may."""
        if not self.components:
            return self.container if component is None else f"Inference Component {component} does not exist."
        if component is None:
            return COMPONENT_REQUIRED
        target = self.components.get(component)
        if target is None:
            return f"Inference Component {component} does not exist."
        if target.copies == 0:
            target.refuse()
            return NO_CAPACITY
        return target.container


class SageMakerEmulation(RuntimeFront):
    """The front over endpoint_server's container mounted in process, over a lazily built local model."""

    def __init__(
        self, local_model: LocalModel, *, region: str = "us-east-1", config: ServerConfig | None = None
    ) -> None:
        super().__init__(EndpointServer(config, loader=lambda: local_model().container()), region=region)
        self.ping = self.container.ping
        self.invocations = self.container.invocations

    def stop(self) -> None:
        """Serve the queued invocations, then stop the container's batcher."""
        self.container.stop()
