"""SageMakerBackend: the cloud path, one ``invoke_endpoint`` per wire chunk.

Every SDK failure becomes an :mod:`omnisearch_embed.errors` exception with a stable code, so the API
answers 429/502/503/504 with a reason instead of a 500, and FallbackBackend can tell the endpoint's
faults from the caller's. Every call runs under the request's deadline (:mod:`omnisearch_embed.deadline`),
narrowed to ``timeout_seconds``: chunks, retries and read timeouts all share it (see :mod:`.retries`).
AWS's own error text is logged, never returned (it names accounts and role ARNs).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from omnisearch_embed import deadline
from omnisearch_embed.backends import retries, wire
from omnisearch_embed.backends.chunked import ChunkedBackend
from omnisearch_embed.component_copies import ComponentCopies
from omnisearch_embed.embeddings import SERVICE_SAGEMAKER, Embeddings
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    EmbedError,
    ModelError,
    ModelWakingError,
    ThrottledError,
    caller_error,
)
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 1.0  # a same-region endpoint connects in milliseconds; a slow connect is an outage
MAX_CONCURRENT_CHUNKS = 4
_MESSAGE_LIMIT = 300
_AWS_TEXT_LOGGED = "AWS's message is in the service log"
_ARN = re.compile(r"arn:aws[\w-]*:[^\s\"',;)]+")
_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
_THROTTLING_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "ModelNotReadyException"}
# InvokeEndpoint's ValidationError while an inference component has no copy: "Inference Component has no capacity
# to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase ...".
_NO_CAPACITY = "has no capacity to process this request"
# A copy takes minutes to start (a GPU instance, then the model); a client polling every minute neither
# hammers the API nor waits long after the copy is up.
WAKE_RETRY_AFTER_SECONDS = 60
_UNAVAILABLE_CODES = {
    "ServiceUnavailable": "endpoint_unavailable",
    "InternalFailure": "backend_internal_error",
    "InternalDependencyException": "backend_internal_error",
}


def client_config(timeout_seconds: float) -> Config:
    """Up to MAX_ATTEMPTS for throttling and failed connects (see :mod:`.retries`), never for a read timeout.

    ``timeout_seconds`` is only the read timeout of a call made outside any deadline; SageMakerBackend always
    calls under one, and each attempt then reads for what that deadline leaves.
    """
    return retries.client_config(
        connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds / 10),
        read_timeout=timeout_seconds,
        max_attempts=MAX_ATTEMPTS,
        pool=max(10, MAX_CONCURRENT_CHUNKS),
    )


def make_client(region: str | None, timeout_seconds: float) -> Any:
    """A ``sagemaker-runtime`` client; no ``endpoint_url`` so AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME still applies."""
    import boto3  # deferred: tests and the local server often inject their own client

    client = boto3.client("sagemaker-runtime", region_name=region or None, config=client_config(timeout_seconds))
    return retries.install(client)


def make_control_client(region: str | None) -> Any:
    """A ``sagemaker`` (control plane) client, for what the data plane does not say: a component's copies."""
    import boto3

    config = retries.client_config(connect_timeout=1.0, read_timeout=3.0, max_attempts=2)
    return boto3.client("sagemaker", region_name=region or None, config=config)


class SageMakerBackend(ChunkedBackend):
    """Embeds through a SageMaker real-time endpoint that runs model_code/code/inference.py."""

    service = SERVICE_SAGEMAKER

    def __init__(
        self,
        endpoint_name: str,
        model_id: str,
        *,
        inference_component: str | None = None,
        copies: ComponentCopies | None = None,
        client: Any = None,
        region: str | None = None,
        timeout_seconds: float = 20.0,
        max_invoke_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES,
        max_concurrency: int = MAX_CONCURRENT_CHUNKS,
    ) -> None:
        if not endpoint_name:
            raise ValueError("SageMakerBackend needs an endpoint name")
        self.endpoint_name = endpoint_name
        self.inference_component = inference_component or None
        self.copies = copies
        self.model_id = model_id
        self.timeout_seconds = timeout_seconds
        self.max_invoke_bytes = max_invoke_bytes
        self.max_concurrency = max(1, max_concurrency)
        self.client = client if client is not None else make_client(region, timeout_seconds)
        self._reported_models: set[str] = set()
        self.target = f"endpoint {endpoint_name}"
        # Where the endpoint hosts the model as an inference component, every call names it: the endpoint
        # alone routes nowhere.
        self._component_args = {"InferenceComponentName": self.inference_component} if self.inference_component else {}

    def health(self) -> dict[str, Any]:
        """Cheap on purpose (no inference; at most the component's copy count, cached): the API's deep check
        embeds a word instead. A component at 0 copies is ``waking``: degraded, not down, as it answers again
        by itself once a copy has started."""
        report: dict[str, Any] = {
            "status": "ok", "service": self.service, "endpoint": self.endpoint_name, "model": self.model_id,
        }  # fmt: skip
        if self.inference_component:
            report["inference_component"] = self.inference_component
        if self.copies is not None:
            report["copies"] = copies = self.copies.read()
            if copies.get("current") == 0:
                report.update(status="degraded", waking=True)
        return report

    def _invoke(self, chunk: wire.Chunk, texts: bool) -> Embeddings:
        deadline.check(f"endpoint {self.endpoint_name} was called for items {chunk.start}..")
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=wire.CONTENT_TYPE,
                Accept=wire.CONTENT_TYPE,
                Body=chunk.body,
                **self._component_args,
            )
            body = response["Body"].read()
        except ClientError as e:
            error = without_aws_text(map_client_error(e, self.endpoint_name), e)
            raise wire.locate_item(error, chunk.start) from e
        except BotoCoreError as e:
            raise map_botocore_error(e, self.endpoint_name) from e
        return wire.decode_response(body, count=chunk.count, service=self.service, texts=texts)


def without_aws_text(error: EmbedError, cause: ClientError, service: str = "SageMaker") -> EmbedError:
    """``error`` with AWS's own message (account ids, role ARNs, policy names) logged and cut from what callers see.

    The container's words (a ModelError's ``OriginalMessage``) stay: they describe the caller's input.
    """
    info = cause.response.get("Error", {})
    raw = info.get("Message", "") or ""
    logger.warning("%s answered %s: %s", service, info.get("Code") or "an error", raw or cause)
    message = error.message
    for text in {trim(raw), trim(str(cause)), raw} - {""}:
        message = message.replace(text, _AWS_TEXT_LOGGED)
    error.message = _ACCOUNT_ID.sub("<account>", _ARN.sub("<arn>", message))
    error.args = (error.message,)
    return error


def map_client_error(error: ClientError, endpoint: str) -> EmbedError:
    """An error the SageMaker runtime answered with -> the API error the caller sees."""
    info = error.response.get("Error", {})
    code = info.get("Code", "")
    message = trim(info.get("Message", "") or str(error))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "ModelError":
        return map_model_error(error.response, message, endpoint)
    if code in ("ValidationError", "ValidationException"):
        lowered = message.lower()
        if _NO_CAPACITY in lowered:  # an inference component scaled to zero: a wait, not the caller's mistake
            return ModelWakingError(
                f"the model on SageMaker endpoint {endpoint} is waking: it scaled to zero and a copy is starting, "
                f"which takes minutes; retry after {WAKE_RETRY_AFTER_SECONDS} s",
                retry_after_seconds=WAKE_RETRY_AFTER_SECONDS,
            )
        if "not found" in lowered:
            return BackendUnavailableError(
                f"SageMaker endpoint {endpoint} was not found: deploy it or fix SAGEMAKER_ENDPOINT_NAME",
                code="endpoint_not_found",
            )
        if "not in service" in lowered or "inservice" in lowered.replace(" ", ""):
            return BackendUnavailableError(
                f"SageMaker endpoint {endpoint} is not in service yet; retry shortly", code="endpoint_unavailable"
            )
        return ModelError(f"SageMaker rejected the request to {endpoint}: {message}", code="backend_rejected_request")
    if code in _THROTTLING_CODES or status == 429:
        return ThrottledError(
            f"SageMaker endpoint {endpoint} is throttling requests; retry with backoff: {message}",
            code="model_not_ready" if code == "ModelNotReadyException" else "throttled",
        )
    if code in _UNAVAILABLE_CODES or status >= 500:
        return BackendUnavailableError(
            f"SageMaker endpoint {endpoint} is unavailable ({code or status}): {message}",
            code=_UNAVAILABLE_CODES.get(code, "endpoint_unavailable"),
        )
    return ModelError(f"SageMaker call to {endpoint} failed ({code or status}): {message}", code="backend_error")


def map_botocore_error(error: BotoCoreError, endpoint: str, *, what: str = "SageMaker endpoint") -> EmbedError:
    """A failure before any answer (timeouts, connections, credentials) -> the API error the caller sees.

    ``what`` names the kind of target in messages (``Lambda function`` for the model function).
    """
    target = f"{what} {endpoint}"
    if isinstance(error, ReadTimeoutError):
        return BackendTimeoutError(f"{target} did not answer in time", code="backend_timeout")
    if isinstance(error, ConnectTimeoutError):
        return BackendTimeoutError(f"could not connect to {target} in time", code="backend_connect_timeout")
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return BackendUnavailableError(
            f"the connection to {target} failed: {trim(str(error))}", code="endpoint_unreachable"
        )
    if isinstance(error, NoCredentialsError):
        return ModelError(f"the embed service has no AWS credentials to call {target}", code="backend_credentials")
    return ModelError(f"the AWS client failed before calling {target}: {trim(str(error))}", code="backend_client_error")


_RUNTIME_MESSAGE = re.compile(r'from (?:primary|model|\S+) with message "(.*)"\. See ', re.DOTALL)


def map_model_error(response: dict[str, Any], message: str, endpoint: str) -> EmbedError:
    """The runtime's ModelError (the container answered non-2xx) -> a 4xx for the caller's mistakes, else a 502.

    ``OriginalMessage`` is the container's body: the toolkit's is plain text (message, newline, traceback),
    our own container's is JSON ``{"code", "message"}``; the readable first line is what the caller sees.
    """
    original = response.get("OriginalStatusCode")
    status = original if isinstance(original, int) else 0
    body = response.get("OriginalMessage")
    if not isinstance(body, str) or not body.strip():
        found = _RUNTIME_MESSAGE.search(response.get("Error", {}).get("Message", "") or "")
        body = found.group(1) if found else ""
    detail, container_code = wire.error_detail(body)
    detail = trim(detail)
    if 400 <= status < 500:  # the container's status and code stand: the model code decided them
        return caller_error(status, detail or f"the model rejected the request (status {status})", container_code)
    where = f" (status {original})" if original else ""
    return ModelError(f"the model on endpoint {endpoint} failed{where}: {detail or message}", code="model_error")


def trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
