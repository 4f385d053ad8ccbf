"""LambdaModelBackend against a real boto3 Lambda client: exact payloads (Stubber), splitting, every fault's code,
function errors, the deadline, and real retries and read timeouts against a local Invoke endpoint."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from omnisearch_embed import deadline
from omnisearch_embed.backends import retries, wire
from omnisearch_embed.backends.lambda_model import MAX_EVENT_BYTES, LambdaModelBackend, event_bytes, make_client
from omnisearch_embed.backends.sagemaker import MAX_ATTEMPTS, client_config
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    EmbedError,
    InvalidInputError,
    ModelError,
    PayloadTooLargeError,
    ThrottledError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from omnisearch_testkit.sagemaker_stubs import container_body, item_vector, serving

FUNCTION = "omnisearch-embed-dev-model"
MODEL = "ViT-B-32/openai"
IMAGE_LIMIT = 4 * 1024 * 1024  # the API's largest image (Settings.max_image_bytes)


def lambda_client(**kwargs: Any) -> Any:
    return boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs
    )


def answer(body: bytes) -> bytes:
    """The model function's answer around a wire body (JSON as text)."""
    return json.dumps({"contentType": "application/json", "body": body.decode(), "isBase64Encoded": False}).encode()


def invoke_response(payload: bytes, function_error: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}
    if function_error:
        response["FunctionError"] = function_error
    return response


def vectors_answer(items: list[str], model: str = MODEL) -> bytes:
    return answer(container_body([item_vector(t) for t in items], model, truncated=[False] * len(items)))


@pytest.fixture
def stubbed() -> Iterator[tuple[LambdaModelBackend, Stubber]]:
    client = lambda_client()
    with Stubber(client) as stubber:
        yield LambdaModelBackend(FUNCTION, MODEL, client=client, max_concurrency=1), stubber
        stubber.assert_no_pending_responses()


def test_texts_go_out_as_the_wire_body_inside_the_event(stubbed: tuple[LambdaModelBackend, Stubber]) -> None:
    backend, stubber = stubbed
    body = b'{"texts":["a red circle","a \\"quoted\\" star"],"normalize":true,"encoding":"base64"}'
    payload = b'{"contentType":"application/json","accept":"application/json","json":' + body + b"}"
    expected = {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": payload}
    stubber.add_response("invoke", invoke_response(vectors_answer(["a red circle", 'a "quoted" star'])), expected)
    result = backend.embed_texts(["a red circle", 'a "quoted" star'])
    assert json.loads(payload)["json"]["texts"][1] == 'a "quoted" star'
    assert result.vectors == [item_vector("a red circle"), item_vector('a "quoted" star')]
    assert (result.model, result.service, result.truncated) == (MODEL, SERVICE_LAMBDA_MODEL, [False, False])
    assert backend.health() == {"status": "ok", "service": "lambda-model", "function": FUNCTION, "model": MODEL}


def test_a_batch_over_the_limit_is_split_across_invokes_in_order() -> None:
    client = lambda_client()
    texts = [f"text number {i} " + "x" * (i * 7) for i in range(12)]
    backend = LambdaModelBackend(FUNCTION, MODEL, client=client, max_invoke_bytes=200, max_concurrency=1)
    chunks = wire.text_chunks(texts, max_bytes=200)
    assert len(chunks) >= 4 and all(len(c.body) <= 200 for c in chunks)
    with Stubber(client) as stubber:
        for chunk in chunks:
            part = texts[chunk.start : chunk.start + chunk.count]
            expected = {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": event_bytes(chunk)}
            stubber.add_response("invoke", invoke_response(vectors_answer(part)), expected)
        result = backend.embed_texts(texts)
        stubber.assert_no_pending_responses()
    assert result.vectors == [item_vector(t) for t in texts]
    assert result.truncated == [False] * len(texts)


def test_the_largest_image_the_api_takes_fits_one_invoke_and_a_larger_one_is_refused() -> None:
    backend = LambdaModelBackend(FUNCTION, MODEL, client=lambda_client())
    chunks = wire.image_chunks([b"\xff" * IMAGE_LIMIT, b"\x01" * (1 << 20)], max_bytes=backend.max_invoke_bytes)
    assert [c.count for c in chunks] == [1, 1]
    assert len(event_bytes(chunks[0])) <= MAX_EVENT_BYTES < 6 * 1024 * 1024
    with pytest.raises(PayloadTooLargeError) as raised:
        backend.embed_images([b"\x00" * (MAX_EVENT_BYTES * 3 // 4)])
    assert (raised.value.code, raised.value.param) == ("item_exceeds_invoke_limit", "images[0]")


@pytest.mark.parametrize(
    ("aws_code", "http", "kind", "code"),
    [
        ("TooManyRequestsException", 429, ThrottledError, "throttled"),
        ("ResourceNotFoundException", 404, BackendUnavailableError, "endpoint_not_found"),
        ("ResourceNotReadyException", 502, BackendUnavailableError, "endpoint_unavailable"),
        ("ResourceConflictException", 409, BackendUnavailableError, "endpoint_unavailable"),
        ("ServiceException", 500, BackendUnavailableError, "backend_internal_error"),
        ("ENILimitReachedException", 502, BackendUnavailableError, "endpoint_unavailable"),
        ("KMSAccessDeniedException", 502, BackendUnavailableError, "endpoint_unavailable"),
        ("EFSMountTimeoutException", 408, BackendUnavailableError, "endpoint_unavailable"),
        ("RequestTooLargeException", 413, ModelError, "backend_rejected_request"),
        ("InvalidRequestContentException", 400, ModelError, "backend_rejected_request"),
        ("AccessDeniedException", 403, ModelError, "backend_error"),
    ],
)
def test_each_lambda_error_maps_to_the_namespaces_code(
    stubbed: tuple[LambdaModelBackend, Stubber], aws_code: str, http: int, kind: type[EmbedError], code: str
) -> None:
    backend, stubber = stubbed
    denied = f"User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized ({aws_code})"
    stubber.add_client_error("invoke", service_error_code=aws_code, service_message=denied, http_status_code=http)
    with pytest.raises(kind) as raised:
        backend.embed_texts(["a"])
    assert raised.value.code == code
    assert type(raised.value) is kind and (raised.value.status == 429 or raised.value.status >= 500)
    assert "123456789012" not in raised.value.message and "arn:aws" not in raised.value.message


@pytest.mark.parametrize(
    ("payload", "kind", "code"),
    [
        ({"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: 1 Error: Task timed out after 20.00 seconds"},
         BackendTimeoutError, "backend_timeout"),
        ({"errorMessage": "2026-01-01T00:00:00Z 1 Task timed out after 3.00 seconds"}, BackendTimeoutError,
         "backend_timeout"),
        ({"errorType": "Runtime.ExitError", "errorMessage": "Error: Runtime exited with error: signal: killed"},
         ModelError, "model_error"),
        ({"errorType": "RuntimeError", "errorMessage": "the forward pass failed", "stackTrace": ["..."]},
         ModelError, "model_error"),
        ({"errorType": "ConfigError", "errorMessage": "this function's archive holds model 'tiny-shapes' but "
          "EXPECTED_MODEL_ID is 'ViT-B-32/openai'"}, ModelError, "model_error"),
        ("not json at all", ModelError, "model_error"),
    ],
)  # fmt: skip
def test_function_errors_are_504_for_a_timeout_and_502_otherwise(
    stubbed: tuple[LambdaModelBackend, Stubber], payload: Any, kind: type[EmbedError], code: str
) -> None:
    backend, stubber = stubbed
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    stubber.add_response("invoke", invoke_response(raw, function_error="Unhandled"))
    with pytest.raises(kind) as raised:
        backend.embed_texts(["a"])
    assert raised.value.code == code
    if "EXPECTED_MODEL_ID" in raw.decode():
        assert "'tiny-shapes'" in raised.value.message and "'ViT-B-32/openai'" in raised.value.message


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        ({"code": "invalid_image", "message": "images[0] is not a readable image", "status": 422},
         UnprocessableError, "invalid_image"),
        ({"code": "unsupported_media_type", "message": "unsupported content type", "status": 415},
         UnsupportedMediaTypeError, "unsupported_media_type"),
        ({"code": "invalid_input", "message": "texts[0] must be a string", "status": 400}, InvalidInputError,
         "invalid_input"),
        ({"code": "invalid_event", "message": "the event has no contentType", "status": 400}, ModelError,
         "backend_rejected_request"),
        ({"code": "oops", "message": "broken", "status": 500}, ModelError, "model_error"),
    ],
)  # fmt: skip
def test_answered_errors_keep_the_model_codes_status_and_code(
    stubbed: tuple[LambdaModelBackend, Stubber], error: dict[str, Any], kind: type[EmbedError], code: str
) -> None:
    backend, stubber = stubbed
    stubber.add_response("invoke", invoke_response(json.dumps({"error": error}).encode()))
    with pytest.raises(kind) as raised:
        backend.embed_images([b"\x89PNG"])
    assert (type(raised.value), raised.value.code) == (kind, code)


def test_a_bad_item_in_a_later_chunk_is_named_in_the_callers_terms() -> None:
    client = lambda_client()
    backend = LambdaModelBackend(FUNCTION, MODEL, client=client, max_invoke_bytes=70, max_concurrency=1)
    images = [b"one image", b"two image", b"bad image"]
    chunks = wire.image_chunks(images, max_bytes=70)
    assert [c.count for c in chunks] == [1, 1, 1]
    bad = {"error": {"code": "invalid_image", "message": "images[0] is not a readable image", "status": 422}}
    with Stubber(client) as stubber:
        for image in images[:2]:
            body = container_body([item_vector(image)], MODEL)
            stubber.add_response("invoke", invoke_response(answer(body)))
        stubber.add_response("invoke", invoke_response(json.dumps(bad).encode()))
        with pytest.raises(UnprocessableError) as raised:
            backend.embed_images(images)
    assert raised.value.index == 2 and raised.value.message.startswith("images[2] is not a readable image")


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>",
        b'{"contentType": "application/json"}',
        b'{"body": "%%%", "isBase64Encoded": true}',
        answer(container_body([item_vector("a"), item_vector("b")], MODEL)),  # two vectors for one text
    ],
)
def test_an_unusable_answer_is_bad_model_response(stubbed: tuple[LambdaModelBackend, Stubber], payload: bytes) -> None:
    backend, stubber = stubbed
    stubber.add_response("invoke", invoke_response(payload))
    with pytest.raises(ModelError) as raised:
        backend.embed_texts(["a"])
    assert raised.value.code == "bad_model_response"


def test_a_spent_deadline_invokes_nothing(stubbed: tuple[LambdaModelBackend, Stubber]) -> None:
    backend, _ = stubbed  # no response queued: an invoke would fail the test with Stubber's own error
    with deadline.scope(time.monotonic() - 1), pytest.raises(BackendTimeoutError) as raised:
        backend.embed_texts(["a"])
    assert raised.value.code == "deadline_exceeded"


def test_the_default_client_honours_aws_endpoint_url_lambda_and_the_deadline_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:3001")
    client = make_client("eu-west-1", 20)
    assert client.meta.endpoint_url == "http://127.0.0.1:3001" and client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert client.meta.config.connect_timeout == 1.0


# --- a local Invoke endpoint: real HTTP, real retries, real read timeouts ----------------------------------


class FunctionServer:
    """Lambda's Invoke API on 127.0.0.1: ``throttle`` 429s first, then each answer after ``delay`` seconds."""

    def __init__(self, *, throttle: int = 0, delay: float = 0.0) -> None:
        self.throttle, self.delay = throttle, delay
        self.paths: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server._lock:
                    server.paths.append(self.path)
                    throttled = server.throttle > 0
                    server.throttle -= 1 if throttled else 0
                try:
                    if throttled:
                        return self._send(
                            429, b'{"Type":"User","message":"Rate Exceeded."}', "TooManyRequestsException"
                        )
                    if server.delay:
                        server.released.wait(server.delay)
                    return self._send(200, vectors_answer(event["json"]["texts"]))
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, body: bytes, error_type: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def function_server(**options: Any) -> Iterator[FunctionServer]:
    server = FunctionServer(**options)
    with serving(server._server, server.released):
        yield server


def http_backend(server: FunctionServer, **options: Any) -> LambdaModelBackend:
    client = retries.install(lambda_client(endpoint_url=server.url, config=client_config(20)))
    return LambdaModelBackend(FUNCTION, MODEL, client=client, **options)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def test_a_throttled_invoke_is_retried_and_then_answers(no_proxy: None) -> None:
    with function_server(throttle=1) as server:
        result = http_backend(server).embed_texts(["a", "b"])
    assert result.vectors == [item_vector("a"), item_vector("b")]
    assert server.paths == [f"/2015-03-31/functions/{FUNCTION}/invocations"] * 2


def test_a_function_that_stays_throttled_is_a_429_after_the_attempts(no_proxy: None) -> None:
    with function_server(throttle=10) as server, pytest.raises(ThrottledError) as raised:
        http_backend(server).embed_texts(["a"])
    assert raised.value.code == "throttled" and len(server.paths) == MAX_ATTEMPTS


def test_a_slow_function_times_out_under_the_deadline_and_is_not_invoked_twice(no_proxy: None) -> None:
    with function_server(delay=30) as server:
        backend = http_backend(server, timeout_seconds=0.3)
        with pytest.raises(BackendTimeoutError) as raised:
            backend.embed_texts(["a"])
    assert (raised.value.status, raised.value.code) == (504, "backend_timeout")
    assert len(server.paths) == 1


def test_split_chunks_go_out_side_by_side_and_come_back_in_order(no_proxy: None) -> None:
    texts = [f"text {i}" for i in range(20)]
    with function_server() as server:
        result = http_backend(server, max_invoke_bytes=80, max_concurrency=4).embed_texts(texts)
    assert len(server.paths) > 4
    assert result.vectors == [item_vector(t) for t in texts]
