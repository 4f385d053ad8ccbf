"""The SageMaker runtime's InvokeEndpoint and the container's /ping, answered by model_code's inference.py.

``POST /endpoints/{name}/invocations`` answers as ``runtime.sagemaker.<region>.amazonaws.com`` does, so
``boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:8000")`` and with it SageMakerBackend
work unchanged. The model runs through ``LocalClipBackend.invoke`` (input_fn -> predict_fn -> output_fn),
as in the container. A failure there becomes what the runtime sends for a container error: HTTP 424,
``x-amzn-ErrorType: ModelError``, and a JSON body with ``OriginalStatusCode`` and ``OriginalMessage`` (the
toolkit's "message\\ntraceback" body), so botocore raises ``ModelError`` with the fields it models.
``/invocations`` and ``/ping`` are the container's own routes, for tools that call a container directly.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from local_server.apigw_event import ACCOUNT_ID
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

_logger = logging.getLogger(__name__)

VARIANT = "AllTraffic"
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/")
LocalModel = Callable[[], Any]  # returns a LocalClipBackend (has .invoke); built lazily, once


def sigv4_scope(authorization: str) -> tuple[str, str] | None:
    """``(access key id, region)`` from a SigV4 ``Authorization`` header, else ``None``."""
    found = _CREDENTIAL.search(authorization) if authorization.startswith("AWS4-HMAC-SHA256") else None
    return (found.group(1), found.group(2)) if found else None


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


def _aws_error(status: int, error_type: str, body: dict[str, Any], request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_type:
        headers["x-amzn-ErrorType"] = f"{error_type}:{_ERROR_NAMESPACE}"
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _model_error(error: BaseException, endpoint: str, region: str, request_id: str) -> Response:
    """The runtime's answer when the container failed: 424 ModelError carrying the container's status and body."""
    status = getattr(error, "status_code", None)
    original_status = status if isinstance(status, int) and 400 <= status < 600 else HTTPStatus.INTERNAL_SERVER_ERROR
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    trace = "".join(traceback.format_exception(error))
    original = f"{message}\n{trace}"  # what sagemaker_inference's Transformer.handle_error writes
    side = "client" if original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    body = {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
        "Message": (
            f'Received {side} error ({int(original_status)}) from primary with message "{original}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={log_group}"
            f" in account {ACCOUNT_ID} for more information."
        ),
        "OriginalMessage": original,
        "OriginalStatusCode": int(original_status),
    }
    return _aws_error(HTTPStatus.FAILED_DEPENDENCY, "ModelError", body, request_id)


class SageMakerEmulation:
    """Request handlers for the runtime and container routes, over a lazily built local model."""

    def __init__(self, local_model: LocalModel, *, region: str = "us-east-1") -> None:
        self._local_model = local_model
        self._region = region

    async def _run(self, request: Request, endpoint: str, request_id: str) -> Response:
        region = (sigv4_scope(request.headers.get("authorization", "")) or ("", self._region))[1]
        body = await read_body(request, SAGEMAKER_MAX_PAYLOAD_BYTES)
        if body is None:  # the runtime's answer to an oversized invocation (no error type: botocore says "413")
            message = f"HTTP content length exceeded {SAGEMAKER_MAX_PAYLOAD_BYTES} bytes."
            return _aws_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "", {"message": message}, request_id)
        content_type = request.headers.get("content-type", "application/octet-stream")
        accept = request.headers.get("accept", "application/json")
        try:
            model = await run_in_threadpool(self._local_model)
        except Exception as e:  # the model failed to load: the endpoint is not serving
            _logger.exception("local model failed to load for endpoint %s", endpoint)
            return _aws_error(
                HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", {"message": f"model not loaded: {e}"}, request_id
            )
        try:
            payload, answer_type = await run_in_threadpool(model.invoke, body, content_type, accept)
        except Exception as e:
            _logger.info("endpoint %s: model error %r", endpoint, e)
            return _model_error(e, endpoint, region, request_id)
        headers = {"x-amzn-RequestId": request_id, "x-Amzn-Invoked-Production-Variant": VARIANT}
        return Response(payload, media_type=answer_type, headers=headers)

    async def invoke_endpoint(self, request: Request) -> Response:
        """``POST /endpoints/{name}/invocations``: any endpoint name is served by the one local model."""
        return await self._run(request, request.path_params["name"], str(uuid.uuid4()))

    async def invocations(self, request: Request) -> Response:
        """``POST /invocations``: the container's own route."""
        return await self._run(request, "local", str(uuid.uuid4()))

    async def ping(self, request: Request) -> Response:
        """``GET /ping``: 200 once the model is loaded, as the container's health check."""
        try:
            await run_in_threadpool(self._local_model)
        except Exception as e:
            _logger.warning("ping: model not loaded: %r", e)
            return Response(json.dumps({"status": "Unhealthy"}), status_code=503, media_type="application/json")
        return Response(json.dumps({"status": "Healthy"}), media_type="application/json")
