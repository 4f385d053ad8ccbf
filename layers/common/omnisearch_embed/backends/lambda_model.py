"""LambdaModelBackend: the model code in a Lambda function (functions/model), one synchronous ``Invoke`` per chunk.

The function speaks the model container's wire inside a small JSON event (its handler's docstring has the
format), so the bodies, the split across invocations and the response checks are :mod:`.wire`'s, as for
SageMaker, only sized to Lambda's payload limit. Failures map to the same :mod:`omnisearch_embed.errors`
classes and codes as SageMakerBackend's: the throttled function is a 429 ``throttled``, its timeout a 504
``backend_timeout``, its crash a 502 ``model_error``, the caller's bad input the model code's own 4xx. Calls
run under the request's deadline narrowed to ``timeout_seconds``, with the deadline-aware retries of
:mod:`.retries`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed import deadline
from omnisearch_embed.backends import retries, wire
from omnisearch_embed.backends.chunked import ChunkedBackend
from omnisearch_embed.backends.sagemaker import (
    MAX_CONCURRENT_CHUNKS,
    client_config,
    map_botocore_error,
    trim,
    without_aws_text,
)
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL, Embeddings
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    EmbedError,
    ModelError,
    ThrottledError,
    caller_error,
)
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, SAGEMAKER_MAX_PAYLOAD_BYTES

logger = logging.getLogger(__name__)

# The event around a wire body: the JSON document goes in as itself, so its size is known to the byte.
EVENT_PREFIX = b'{"contentType":"application/json","accept":"application/json","json":'
EVENT_SUFFIX = b"}"
# Lambda refuses a synchronous request of 6 MiB or more ("must be smaller than 6291456 bytes").
MAX_EVENT_BYTES = LAMBDA_MAX_EVENT_BYTES - 1
MAX_BODY_BYTES = MAX_EVENT_BYTES - len(EVENT_PREFIX) - len(EVENT_SUFFIX)
INVALID_EVENT = "invalid_event"  # the function's code for an event it cannot read: our request, not the caller's
_TIMED_OUT = re.compile(r"Task timed out after|Sandbox\.Timedout", re.IGNORECASE)
_NOT_READY = {"ResourceNotReadyException", "ResourceConflictException", "SnapStartNotReadyException"}
_CANNOT_START = ("EFS", "S3Files", "SnapStart", "CodeArtifact", "RuntimeVersion", "RuntimeAlias")
_OUR_REQUEST = {
    "InvalidRequestContentException",
    "RequestTooLargeException",
    "SerializedRequestEntityTooLargeException",
    "UnsupportedMediaTypeException",
    "InvalidParameterValueException",
    "RecursiveInvocationException",
}


def make_client(region: str | None, timeout_seconds: float) -> Any:
    """A ``lambda`` client with the deadline-aware retries; no ``endpoint_url``, so AWS_ENDPOINT_URL_LAMBDA applies."""
    import boto3  # deferred: tests inject their own client

    client = boto3.client("lambda", region_name=region or None, config=client_config(timeout_seconds))
    return retries.install(client)


def event_bytes(chunk: wire.Chunk) -> bytes:
    """The Invoke payload for one wire chunk: its JSON body inside the event, as is."""
    return EVENT_PREFIX + chunk.body + EVENT_SUFFIX


class LambdaModelBackend(ChunkedBackend):
    """Embeds through the model function (functions/model/app.py), which runs model_code/code/inference.py."""

    service = SERVICE_LAMBDA_MODEL

    def __init__(
        self,
        function_name: str,
        model_id: str,
        *,
        client: Any = None,
        region: str | None = None,
        timeout_seconds: float = 20.0,
        max_invoke_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES,
        max_concurrency: int = MAX_CONCURRENT_CHUNKS,
    ) -> None:
        if not function_name:
            raise ValueError("LambdaModelBackend needs a function name")
        self.function_name = function_name
        self.model_id = model_id
        self.timeout_seconds = timeout_seconds
        self.max_invoke_bytes = min(max_invoke_bytes, MAX_BODY_BYTES)  # a wire body, less the event around it
        self.max_concurrency = max(1, max_concurrency)
        self.client = client if client is not None else make_client(region, timeout_seconds)
        self._reported_models: set[str] = set()
        self.target = f"function {function_name}"

    def health(self) -> dict[str, Any]:
        """Cheap on purpose (no invoke): the API's deep check embeds a word instead."""
        return {"status": "ok", "service": self.service, "function": self.function_name, "model": self.model_id}

    def _invoke(self, chunk: wire.Chunk, texts: bool) -> Embeddings:
        deadline.check(f"function {self.function_name} was called for items {chunk.start}..")
        try:
            response = self.client.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", Payload=event_bytes(chunk)
            )
            payload = response["Payload"].read()
        except ClientError as e:
            raise without_aws_text(map_client_error(e, self.function_name), e, "Lambda") from e
        except BotoCoreError as e:
            raise map_botocore_error(e, self.function_name, what="Lambda function") from e
        if response.get("FunctionError"):
            raise map_function_error(payload, self.function_name)
        body = answer_body(payload)
        if isinstance(body, EmbedError):
            raise wire.locate_item(body, chunk.start)
        return wire.decode_response(body, count=chunk.count, service=self.service, texts=texts)


def answer_body(payload: bytes) -> bytes | EmbedError:
    """The wire body of the function's answer, or the error it answered for the request."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return map_answered_error(doc["error"])
    body = doc.get("body") if isinstance(doc, dict) else None
    if not isinstance(body, str):
        return ModelError(
            f"the model function sent an unusable response: no body ({payload[:80]!r})", code="bad_model_response"
        )
    if not doc.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return ModelError("the model function sent a body that is not base64", code="bad_model_response")


def map_answered_error(error: dict[str, Any]) -> EmbedError:
    """The function's ``{"error": {"code", "message", "status"}}``: a 4xx is the caller's, with the model's code."""
    status, code, message = error.get("status"), error.get("code"), trim(str(error.get("message") or ""))
    if code == INVALID_EVENT:
        return ModelError(f"the model function could not read our request: {message}", code="backend_rejected_request")
    if isinstance(status, int) and 400 <= status < 500:
        return caller_error(status, message or f"the model rejected the request (status {status})", code)
    return ModelError(f"the model function failed (status {status}): {message}", code="model_error")


def map_function_error(payload: bytes, function: str) -> EmbedError:
    """An invoke the function did not complete (an exception, a timeout, a crash at init) -> 504 or 502."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    kind, message = str(doc.get("errorType") or "an error"), str(doc.get("errorMessage") or "")
    logger.warning("model function %s failed (%s): %s", function, kind, message or payload[:300])
    if _TIMED_OUT.search(kind) or _TIMED_OUT.search(message):
        return BackendTimeoutError(f"Lambda function {function} timed out", code="backend_timeout")
    return ModelError(f"the model in Lambda function {function} failed ({kind}): {trim(message)}", code="model_error")


def map_client_error(error: ClientError, function: str) -> EmbedError:
    """An error Lambda answered Invoke with -> the API error the caller sees (SageMakerBackend's codes)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "TooManyRequestsException" or status == 429:
        return ThrottledError(
            f"Lambda function {function} is throttling requests; retry with backoff", code="throttled"
        )
    if code == "ResourceNotFoundException":
        return BackendUnavailableError(
            f"Lambda function {function} was not found: deploy it or fix MODEL_FUNCTION_NAME", code="endpoint_not_found"
        )
    if code in _NOT_READY:
        return BackendUnavailableError(
            f"Lambda function {function} is not ready (being created or updated); retry shortly",
            code="endpoint_unavailable",
        )
    if code in _OUR_REQUEST:
        return ModelError(f"Lambda refused the request to {function} ({code})", code="backend_rejected_request")
    if code == "ServiceException":
        return BackendUnavailableError(f"Lambda failed to run {function} ({code})", code="backend_internal_error")
    if status >= 500 or code.startswith(_CANNOT_START):  # Lambda could not start the function (ENI, KMS, EFS...)
        return BackendUnavailableError(
            f"Lambda function {function} cannot run ({code or status})", code="endpoint_unavailable"
        )
    return ModelError(f"Lambda call to {function} failed ({code or status})", code="backend_error")
