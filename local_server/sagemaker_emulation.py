"""The SageMaker runtime's InvokeEndpoint in front of the serving container (endpoint_server), in process.

``/ping`` and ``/invocations`` are the container's own routes: endpoint_server's EndpointServer, mounted
here over the local model (the same inference.py functions, the same dynamic batcher), so what the tests
prove against the emulation is the container's code. ``POST /endpoints/{name}/invocations`` answers as
``runtime.sagemaker.<region>.amazonaws.com`` does, so ``boto3.client("sagemaker-runtime",
endpoint_url="http://127.0.0.1:8000")`` and with it SageMakerBackend work unchanged: a container 4xx/5xx
becomes HTTP 424 ``x-amzn-ErrorType: ModelError`` with ``OriginalStatusCode`` and ``OriginalMessage`` (the
container's JSON ``{"code", "message"}`` body), so botocore raises ``ModelError`` with the fields it models.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from endpoint_server.app import EndpointServer, ServerConfig, read_body
from local_server.apigw_event import ACCOUNT_ID
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

_logger = logging.getLogger(__name__)

__all__ = [
    "ERROR_NAMESPACE",
    "VARIANT",
    "LocalModel",
    "SageMakerEmulation",
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


def _aws_error(status: int, error_type: str, body: dict[str, Any], request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_type:
        headers["x-amzn-ErrorType"] = f"{error_type}:{ERROR_NAMESPACE}"
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")


def model_error_body(original_status: int, original: str, endpoint: str, region: str) -> dict[str, Any]:
    """The runtime's JSON when the container answered ``original_status`` with body ``original``."""
    side = "client" if original_status < 500 else "server"
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


class SageMakerEmulation:
    """The container mounted over a lazily built local model, and the runtime's wrapping of its answers."""

    def __init__(
        self, local_model: LocalModel, *, region: str = "us-east-1", config: ServerConfig | None = None
    ) -> None:
        self._region = region
        self.container = EndpointServer(config, loader=lambda: local_model().container())
        self.ping = self.container.ping
        self.invocations = self.container.invocations

    def stop(self) -> None:
        """Serve the queued invocations, then stop the container's batcher."""
        self.container.stop()

    async def invoke_endpoint(self, request: Request) -> Response:
        """``POST /endpoints/{name}/invocations``: any endpoint name is served by the one local container."""
        endpoint, request_id = request.path_params["name"], str(uuid.uuid4())
        region = (sigv4_scope(request.headers.get("authorization", "")) or ("", self._region))[1]
        body = await read_body(request, SAGEMAKER_MAX_PAYLOAD_BYTES)
        if body is None:  # the runtime's answer to an oversized invocation (no error type: botocore says "413")
            message = f"HTTP content length exceeded {SAGEMAKER_MAX_PAYLOAD_BYTES} bytes."
            return _aws_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "", {"message": message}, request_id)
        content_type = request.headers.get("content-type", "application/octet-stream")
        accept = request.headers.get("accept", "application/json")
        answer = await self.container.invoke(body, content_type, accept)
        payload = bytes(answer.body)
        if answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE and _container_code(payload) == "model_not_loaded":
            _logger.error("endpoint %s: %s", endpoint, payload.decode(errors="replace"))
            return _aws_error(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", json.loads(payload), request_id)
        if answer.status_code >= 400:
            _logger.info("endpoint %s: container answered %d %s", endpoint, answer.status_code, payload[:200])
            original = payload.decode("utf-8", errors="replace")
            return model_error(answer.status_code, original, endpoint, region, request_id)
        headers = {"x-amzn-RequestId": request_id, "x-Amzn-Invoked-Production-Variant": VARIANT}
        return Response(payload, media_type=answer.media_type, headers=headers)
