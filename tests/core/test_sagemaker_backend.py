"""SageMakerBackend against a real boto3 client: exact requests (Stubber), fault mapping, split batches, timeouts."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber

from omnisearch_embed.backends import retries
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.backends.sagemaker import MAX_ATTEMPTS, SageMakerBackend, client_config
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    EmbedError,
    InvalidInputError,
    ModelError,
    PayloadTooLargeError,
)
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES
from omnisearch_testkit.sagemaker_stubs import (
    container_body,
    container_server,
    invoke_params,
    item_vector,
    runtime_client,
    stub_response,
)

ENDPOINT = "omnisearch-embed-dev"
MODEL = "ViT-B-32/openai"


def _compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@pytest.fixture
def stubbed() -> Iterator[tuple[SageMakerBackend, Stubber]]:
    client = runtime_client()
    with Stubber(client) as stubber:
        yield SageMakerBackend(ENDPOINT, MODEL, client=client, max_concurrency=1), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return monkeypatch


# --- the request and the answer ---------------------------------------------------------------------


def test_texts_send_the_exact_request_and_decode_the_container_answer(stubbed: Any) -> None:
    backend, stubber = stubbed
    texts = ["a red circle", "x " * 200]
    vectors = [item_vector(t) for t in texts]
    stubber.add_response(
        "invoke_endpoint",
        stub_response(container_body(vectors, MODEL, truncated=[False, True], tokens=[5, 77])),
        invoke_params(ENDPOINT, _compact({"texts": texts, "normalize": True, "encoding": "base64"})),
    )
    result = backend.embed_texts(texts)
    assert isinstance(backend, Backend)
    assert (result.vectors, result.model, result.service, result.dimension) == (vectors, MODEL, "sagemaker", 8)
    assert (result.truncated, result.tokens) == ([False, True], [5, 77])


def test_images_send_base64_and_pass_normalize_through(stubbed: Any) -> None:
    backend, stubber = stubbed
    images = [b"\x89PNG\r\n\x1a\nfirst", b"\xff\xd8\xffsecond"]
    vectors = [item_vector(i) for i in images]
    body = {"images": [base64.b64encode(i).decode() for i in images], "normalize": False, "encoding": "base64"}
    stubber.add_response(
        "invoke_endpoint",
        stub_response(container_body(vectors, MODEL, encoding="float")),  # a container that ignores "encoding"
        invoke_params(ENDPOINT, _compact(body)),
    )
    result = backend.embed_images(images, normalize=False)
    assert result.vectors == vectors
    assert (result.truncated, result.tokens) == (None, None)


def test_an_empty_batch_is_refused_before_any_call(stubbed: Any) -> None:
    backend, _ = stubbed
    for call in (backend.embed_texts, backend.embed_images):
        with pytest.raises(InvalidInputError) as info:
            call([])
        assert info.value.code == "empty_batch"


def test_a_container_serving_another_model_is_named_as_it_is(stubbed: Any, caplog: pytest.LogCaptureFixture) -> None:
    backend, stubber = stubbed
    for _ in range(2):
        stubber.add_response("invoke_endpoint", stub_response(container_body([item_vector("a")], "ViT-L-14/openai")))
    with caplog.at_level(logging.WARNING, logger="omnisearch_embed.backends.sagemaker"):
        first, second = backend.embed_texts(["a"]), backend.embed_texts(["a"])
    assert first.model == second.model == "ViT-L-14/openai"
    warnings = [r for r in caplog.records if "ViT-L-14/openai" in r.getMessage()]
    assert len(warnings) == 1  # once per model, not once per request


def test_health_is_cheap_and_names_the_endpoint(stubbed: Any) -> None:
    backend, _ = stubbed  # no response queued: any AWS call would fail the test
    assert backend.health() == {"status": "ok", "service": "sagemaker", "endpoint": ENDPOINT, "model": MODEL}


# --- batches over the invoke limit ------------------------------------------------------------------


def test_a_batch_over_the_limit_becomes_several_invocations_in_order() -> None:
    client = runtime_client()
    backend = SageMakerBackend(ENDPOINT, MODEL, client=client, max_invoke_bytes=1024, max_concurrency=1)
    texts = [f"caption number {i:03d} " + "w" * 40 for i in range(40)]  # every item is 61 bytes as JSON
    overhead = len(_compact({"texts": [], "normalize": True, "encoding": "base64"}))
    per_chunk = (1024 - overhead + 1) // (len(json.dumps(texts[0])) + 1)
    starts = range(0, len(texts), per_chunk)
    assert len(starts) >= 3
    with Stubber(client) as stubber:
        for start in starts:
            part = texts[start : start + per_chunk]
            stubber.add_response(
                "invoke_endpoint",
                stub_response(container_body([item_vector(t) for t in part], MODEL, tokens=[9] * len(part))),
                invoke_params(ENDPOINT, _compact({"texts": part, "normalize": True, "encoding": "base64"})),
            )
        result = backend.embed_texts(texts)
        stubber.assert_no_pending_responses()
    assert result.vectors == [item_vector(t) for t in texts]
    assert result.tokens == [9] * len(texts)


def test_a_split_batch_runs_concurrently_against_an_http_endpoint_and_keeps_order(aws_env: Any) -> None:
    with container_server(MODEL, delay=0.2) as server:
        aws_env.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)  # what the local server's emulation uses
        backend = SageMakerBackend(ENDPOINT, MODEL, region="us-east-1", max_invoke_bytes=512)
        assert backend.client.meta.endpoint_url == server.url
        texts = [f"item {i} " + "z" * (i % 50) for i in range(120)]
        result = backend.embed_texts(texts)
    assert result.vectors == [item_vector(t) for t in texts]
    assert len(server.bodies) > 4
    assert all(len(b) <= 512 for b in server.bodies)
    assert set(server.paths) == {f"/endpoints/{ENDPOINT}/invocations"}
    assert server.peak_in_flight >= 2


def test_a_real_size_image_batch_is_split_under_6_mb(aws_env: Any) -> None:
    rng = random.Random(11)
    images = [rng.randbytes(500_000) for _ in range(20)]  # 10 MB of images, ~13.3 MB as base64
    with container_server(MODEL) as server:
        backend = SageMakerBackend(ENDPOINT, MODEL, client=runtime_client(endpoint_url=server.url))
        result = backend.embed_images(images)
    assert result.vectors == [item_vector(i) for i in images]
    assert len(server.bodies) == 3
    assert all(len(b) <= SAGEMAKER_MAX_PAYLOAD_BYTES for b in server.bodies)


def test_chunks_not_started_by_the_deadline_are_not_sent(aws_env: Any) -> None:
    with container_server(MODEL, delay=0.4) as server:
        client = runtime_client(endpoint_url=server.url)
        backend = SageMakerBackend(
            ENDPOINT, MODEL, client=client, timeout_seconds=0.2, max_invoke_bytes=256, max_concurrency=1
        )
        with pytest.raises(BackendTimeoutError) as info:
            backend.embed_texts([f"text number {i} " + "v" * 50 for i in range(10)])
    assert info.value.code == "deadline_exceeded"
    assert len(server.bodies) == 1


def test_one_image_too_big_for_any_invocation_is_a_413(stubbed: Any) -> None:
    backend, _ = stubbed
    with pytest.raises(PayloadTooLargeError) as info:
        backend.embed_images([b"small", bytes(5 * 1024 * 1024)])
    assert (info.value.status, info.value.code, info.value.param) == (413, "item_exceeds_invoke_limit", "images[1]")


# --- faults the runtime answers with ------------------------------------------------------------------

_TRACEBACK = 'Traceback (most recent call last):\n  File "inference.py", line 80\nRuntimeError: CUDA out of memory'
_MODEL_ERROR_FIELDS = {"OriginalStatusCode": 500, "OriginalMessage": _TRACEBACK, "LogStreamArn": "arn:aws:logs:x"}
_NOT_FOUND = f"Endpoint {ENDPOINT} of account 123456789012 not found."


@pytest.mark.parametrize(
    ("error_code", "http_status", "message", "fields", "status", "code"),
    [
        ("ModelError", 424, "Received server error (500) from primary", _MODEL_ERROR_FIELDS, 502, "model_error"),
        ("ValidationError", 400, _NOT_FOUND, None, 503, "endpoint_not_found"),
        ("ValidationException", 400, f"Endpoint {ENDPOINT} is not in service", None, 503, "endpoint_unavailable"),
        ("ValidationError", 400, "1 validation error detected", None, 502, "backend_rejected_request"),
        ("ThrottlingException", 400, "Rate exceeded", None, 429, "throttled"),
        ("ModelNotReadyException", 429, "Model is loading", None, 429, "model_not_ready"),
        ("SomethingNew", 429, "slow down", None, 429, "throttled"),
        ("ServiceUnavailable", 503, "Service Unavailable", None, 503, "endpoint_unavailable"),
        ("InternalFailure", 500, "An internal error occurred", None, 503, "backend_internal_error"),
        ("InternalDependencyException", 530, "dependency failed", None, 503, "backend_internal_error"),
        ("AccessDeniedException", 403, "not authorized to perform InvokeEndpoint", None, 502, "backend_error"),
    ],
)
def test_runtime_errors_map_to_clear_api_errors(
    stubbed: Any, error_code: str, http_status: int, message: str, fields: dict | None, status: int, code: str
) -> None:
    backend, stubber = stubbed
    stubber.add_client_error("invoke_endpoint", error_code, message, http_status, modeled_fields=fields)
    with pytest.raises(EmbedError) as info:
        backend.embed_texts(["a photo of a cat"])
    assert (info.value.status, info.value.code) == (status, code)
    assert ENDPOINT in info.value.message
    assert "Traceback" not in info.value.message


_TOOLKIT_422 = (  # what the PyTorch toolkit answers for an InputError: its JSON, newline, traceback
    '{"code": "invalid_image", "message": "images[0] is not a readable image (5 bytes)"}\n'
    "Traceback (most recent call last):\n"
    '  File "/opt/ml/model/code/clip_inputs.py", line 150, in opened\n'
    "inference__clip_inputs.InputError: images[0] is not a readable image (5 bytes)\n"
)
_TOOLKIT_400 = (  # the same from older model code: message, newline, traceback
    "images[0] is not valid base64: Incorrect padding\nTraceback (most recent call last):\n"
    '  File "/opt/ml/model/code/clip_inputs.py", line 68, in decode_b64\n'
    "inference__clip_inputs.InputError: images[0] is not valid base64: Incorrect padding\n"
)


@pytest.mark.parametrize(
    ("original_status", "body", "status", "code", "message"),
    [
        (422, _TOOLKIT_422, 422, "invalid_image", "images[0] is not a readable image (5 bytes)"),
        (400, _TOOLKIT_400, 400, "invalid_input", "images[0] is not valid base64: Incorrect padding"),
        (406, json.dumps({"code": "not_acceptable", "message": "unsupported Accept"}), 400, "not_acceptable",
         "unsupported Accept"),
        (415, "unsupported content type 'text/csv'\nTraceback ...", 415, "unsupported_media_type",
         "unsupported content type 'text/csv'"),
        (422, json.dumps({"code": "invalid_image", "message": "images[0] is not a readable image"}), 422,
         "invalid_image", "images[0] is not a readable image"),
        (413, json.dumps({"error": {"code": "image_too_many_pixels", "message": "too big\nsecond line"}}), 413,
         "image_too_many_pixels", "too big"),
        (429, "worker busy", 429, "throttled", "worker busy"),
    ],
)  # fmt: skip
def test_a_container_4xx_is_the_matching_public_4xx_in_the_containers_words(
    stubbed: Any, original_status: int, body: str, status: int, code: str, message: str
) -> None:
    backend, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint", "ModelError", f"Received client error ({original_status}) from primary", 424,
        modeled_fields={"OriginalStatusCode": original_status, "OriginalMessage": body},
    )  # fmt: skip
    with pytest.raises(EmbedError) as info:
        backend.embed_images([b"not an image"])
    assert (info.value.status, info.value.code, info.value.message) == (status, code, message)


def test_a_long_container_message_is_trimmed(stubbed: Any) -> None:
    backend, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint", "ModelError", "Received client error (400) from primary", 424,
        modeled_fields={"OriginalStatusCode": 400,
                        "OriginalMessage": json.dumps({"error": {"code": "bad_image", "message": "cannot identify"
                                                                 " image file " + "x" * 1000}})},
    )  # fmt: skip
    with pytest.raises(InvalidInputError) as info:
        backend.embed_images([b"not an image"])
    assert info.value.code == "bad_image" and info.value.message.startswith("cannot identify image file xxx")
    assert len(info.value.message) < 400


def test_a_container_5xx_names_the_first_readable_line_not_the_traceback(stubbed: Any) -> None:
    backend, stubber = stubbed
    body = 'CUDA out of memory\nTraceback (most recent call last):\n  File "inference.py", line 80\nRuntimeError: x'
    stubber.add_client_error(
        "invoke_endpoint", "ModelError", "Received server error (500) from primary", 424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": body},
    )  # fmt: skip
    with pytest.raises(ModelError) as info:
        backend.embed_texts(["a"])
    assert (info.value.status, info.value.code) == (502, "model_error")
    assert info.value.message.endswith("(status 500): CUDA out of memory")


def test_a_response_that_is_not_the_protocol_is_a_502(stubbed: Any) -> None:
    backend, stubber = stubbed
    stubber.add_response("invoke_endpoint", stub_response(b'{"predictions": [[0.1, 0.2]]}'))
    with pytest.raises(ModelError) as info:
        backend.embed_texts(["a"])
    assert info.value.code == "bad_model_response"


# --- faults before any answer: a real client with the real retry config -------------------------------


@pytest.mark.parametrize(
    ("raised", "expected", "code", "attempts"),
    [
        # a read timeout may mean the invoke is still running: never sent twice
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker"), BackendTimeoutError, "backend_timeout", 1),
        (
            ConnectTimeoutError(endpoint_url="https://runtime.sagemaker"),
            BackendTimeoutError,
            "backend_connect_timeout",
            MAX_ATTEMPTS,
        ),
        (
            EndpointConnectionError(endpoint_url="https://x"),
            BackendUnavailableError,
            "endpoint_unreachable",
            MAX_ATTEMPTS,
        ),
    ],
)
def test_only_failures_to_connect_are_retried(
    aws_env: Any, raised: Exception, expected: type[EmbedError], code: str, attempts: int
) -> None:
    backend = SageMakerBackend(ENDPOINT, MODEL, region="us-east-1")
    sent = []

    def fail(**kwargs: Any) -> None:
        sent.append(kwargs["request"].url)
        raise raised

    backend.client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail)
    with pytest.raises(expected) as info:
        backend.embed_texts(["a"])
    assert info.value.code == code
    assert len(sent) == attempts
    assert sent[0].endswith(f"/endpoints/{ENDPOINT}/invocations")


def _never_sent(**kwargs: Any) -> None:
    raise AssertionError(f"a request left the process: {kwargs['request'].url}")


def test_missing_credentials_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session from an earlier test caches its credentials
    backend = SageMakerBackend(ENDPOINT, MODEL, region="us-east-1")
    backend.client.meta.events.register("before-send.*.*", _never_sent)
    with pytest.raises(ModelError) as info:
        backend.embed_texts(["a"])
    assert isinstance(info.value.__cause__, NoCredentialsError)
    assert info.value.code == "backend_credentials"


def test_a_slow_endpoint_times_out_for_real_and_is_not_sent_twice(aws_env: Any) -> None:
    with container_server(MODEL, delay=1.0) as server:
        client = retries.install(runtime_client(endpoint_url=server.url, config=client_config(20)))
        backend = SageMakerBackend(ENDPOINT, MODEL, client=client, timeout_seconds=0.3)
        with pytest.raises(BackendTimeoutError) as info:
            backend.embed_texts(["a"])
    assert (info.value.status, info.value.code) == (504, "backend_timeout")
    assert len(server.bodies) == 1


# --- client configuration ---------------------------------------------------------------------------


def test_the_default_client_uses_the_deadline_policy_and_honours_the_endpoint_override(aws_env: Any) -> None:
    aws_env.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9911")
    backend = SageMakerBackend(ENDPOINT, MODEL, region="eu-west-1", timeout_seconds=20)
    config = backend.client.meta.config
    assert backend.client.meta.endpoint_url == "http://127.0.0.1:9911"
    assert backend.client.meta.region_name == "eu-west-1"
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert config.read_timeout == 20 and config.connect_timeout == 1.0


_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/omnisearch-embed-dev-EmbedRole/omnisearch-embed-dev-embed "
    "is not authorized to perform: sagemaker:InvokeEndpoint on resource: "
    "arn:aws:sagemaker:us-east-1:123456789012:endpoint/omnisearch-embed-dev"
)


@pytest.mark.parametrize(
    ("error_code", "http_status", "fields"),
    [
        ("AccessDeniedException", 403, None),
        ("ValidationError", 400, None),
        ("ThrottlingException", 400, None),
        ("ServiceUnavailable", 503, None),
        ("ModelError", 424, {"OriginalStatusCode": 500, "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:x"}),
    ],
)
def test_aws_error_text_is_logged_never_returned(
    stubbed: Any, caplog: pytest.LogCaptureFixture, error_code: str, http_status: int, fields: dict | None
) -> None:
    backend, stubber = stubbed
    stubber.add_client_error("invoke_endpoint", error_code, _DENIED, http_status, modeled_fields=fields)
    with caplog.at_level(logging.WARNING), pytest.raises(EmbedError) as info:
        backend.embed_texts(["a"])
    public = json.dumps(info.value.to_dict())
    assert "123456789012" not in public and "arn:" not in public and "assumed-role" not in public
    assert info.value.code and ENDPOINT in info.value.message
    assert any("assumed-role" in record.getMessage() for record in caplog.records)  # the operator still sees it
