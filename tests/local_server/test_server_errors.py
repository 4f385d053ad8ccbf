"""Bad input over HTTP gets the same status and body as the Lambda handler gives; the server keeps answering.

The Lambda side is an event written out the way API Gateway (and ``sam local generate-event``) spells it,
Title-Case headers and a stage-prefixed ``requestContext.path``, built independently of the adapter.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from omnisearch_embed.api import create_app
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, Settings
from tests.helpers.ping import wait_healthy
from tests.local_server.serving import MainServer, Running, png_bytes, serving

PNG = png_bytes(Image.new("RGB", (32, 32), "red"))
BMP = png_bytes(Image.new("RGB", (8, 8), "blue"), "BMP")


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height``: the decompression-bomb probe."""
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


RAW_PNG = {"content-type": "image/png"}
BAD_INPUTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "/embed/text",
        "invalid JSON",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
    ),
    ("/embed/text", "missing field", {"json": {}}, 422, "validation_error"),
    ("/embed/text", "extra field", {"json": {"text": "a", "colour": "red"}}, 422, "validation_error"),
    ("/embed/text", "wrong type", {"json": {"text": 5}}, 422, "validation_error"),
    ("/embed/text", "empty text", {"json": {"text": ""}}, 400, "empty_text"),
    ("/embed/text", "10,001 characters", {"json": {"text": "x" * 10_001}}, 413, "text_too_long"),
    (
        "/embed/text",
        "wrong content type",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    ("/embed/batch/text", "empty batch", {"json": {"texts": []}}, 400, "empty_batch"),
    ("/embed/batch/text", "257 items", {"json": {"texts": ["a"] * 257}}, 413, "too_many_items"),
    ("/embed/image", "invalid base64", {"json": {"image": "!!!not base64"}}, 400, "invalid_base64"),
    ("/embed/image", "non-image bytes", {"content": b"hello world", "headers": RAW_PNG}, 422, "invalid_image"),
    ("/embed/image", "truncated PNG", {"content": PNG[: len(PNG) // 2], "headers": RAW_PNG}, 422, "corrupt_image"),
    (
        "/embed/image",
        "20000x20000 header",
        {"content": png_header(20_000, 20_000) + PNG[33:], "headers": RAW_PNG},
        413,
        "image_too_many_pixels",
    ),
    (
        "/embed/image",
        "BMP body",
        {"content": BMP, "headers": {"content-type": "image/bmp"}},
        415,
        "unsupported_image_format",
    ),
    ("/embed/image", "BMP in JSON", {"json": {"image": b64(BMP)}}, 415, "unsupported_image_format"),
    (
        "/embed/image",
        "bucket off the list",
        {"json": {"image": "s3://other-bucket/cat.png"}},
        403,
        "s3_bucket_not_allowed",
    ),
    ("/embed/image", "http URL", {"json": {"image": "https://example.com/cat.png"}}, 400, "url_not_supported"),
    ("/embed/image", "no file field", {"files": {"upload": ("a.png", PNG, "image/png")}}, 400, "missing_file"),
    (
        "/embed/image",
        "bad option",
        {"content": PNG, "headers": RAW_PNG, "params": {"encoding": "hex"}},
        400,
        "invalid_option",
    ),
    ("/embed/batch/image", "bad item", {"json": {"images": [b64(PNG), "!!"]}}, 400, "invalid_base64"),
]


def lambda_event(request: httpx.Request) -> dict[str, Any]:
    """The event API Gateway sends for ``request``, spelled independently of local_server.apigw_event."""
    headers = {k.title(): v for k, v in request.headers.items()}
    body = request.read()
    binary = headers.get("Content-Type", "").startswith(("image/", "multipart/form-data"))
    query = dict(request.url.params) or None
    path = request.url.path
    return {
        "resource": path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": request.method,
            "path": f"/dev{path}",
            "stage": "dev",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "127.0.0.1", "apiKey": None},
        },
        "body": (b64(body) if binary else body.decode()) if body else None,
        "isBase64Encoded": binary and bool(body),
    }


@pytest.fixture(scope="module")
def lambda_app(tiny: Any) -> Any:
    return create_app(tiny, Settings())


@pytest.mark.parametrize(
    ("path", "case", "kwargs", "status", "code"), BAD_INPUTS, ids=[f"{p} {c}" for p, c, *_ in BAD_INPUTS]
)
def test_bad_input_is_answered_as_in_lambda(
    server: MainServer, lambda_app: Any, path: str, case: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        request = client.build_request("POST", path, **kwargs)
        response = client.send(request)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
        assert response.headers["content-type"].startswith("application/json")
        in_lambda = lambda_app.resolve(lambda_event(request), None)
        assert in_lambda["statusCode"] == response.status_code
        assert response.json() == json.loads(in_lambda["body"])
        after = client.post("/embed/text", json={"text": "a blue star"})
        assert after.status_code == 200 and after.json()["dimension"] > 0


def test_a_body_over_lambdas_event_limit_is_413_and_the_server_goes_on(server: MainServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/embed/image", content=b"\0" * (LAMBDA_MAX_EVENT_BYTES + 1), headers=RAW_PNG)
        assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("size", "content_type"),
    [
        (LAMBDA_MAX_EVENT_BYTES * 3 // 4 + 1024, "image/png"),  # under 6 MB raw, over it once base64-encoded
        (LAMBDA_MAX_EVENT_BYTES - 512, "application/json"),  # the headers and the event's own fields tip it over
    ],
    ids=["binary body in base64", "text body plus headers"],
)
def test_the_limit_is_the_whole_event_as_lambda_counts_it(server: MainServer, size: int, content_type: str) -> None:
    body = b"a" * size if content_type.startswith("image/") else b'{"text": "' + b"a" * (size - 12) + b'"}'
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/embed/image", content=body, headers={"content-type": content_type})
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert "event limit" in response.json()["error"]["message"]


def test_a_body_just_under_the_event_limit_reaches_the_handler(server: MainServer) -> None:
    body = b"\x89PNG\r\n\x1a\n" + b"\0" * (LAMBDA_MAX_EVENT_BYTES * 3 // 4 - 64 * 1024)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/embed/image", content=body, headers=RAW_PNG)
    assert response.json()["error"]["code"] != "request_too_large", response.text
    assert 400 <= response.status_code < 500  # the handler's own verdict on a broken PNG


# -- --api-key ---------------------------------------------------------------------------------------
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed(tiny: Any) -> Iterator[Running]:
    with serving(tiny, Settings(api_key=KEY), local_model=lambda: tiny, workers=4) as running:
        yield running


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {KEY}"}],
    ids=["none", "wrong x-api-key", "wrong bearer", "not bearer"],
)
def test_api_key_is_required_and_checked(keyed: Running, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60, headers=headers) as client:
        denied = client.post("/embed/text", json={"text": "a red circle"})
        assert denied.status_code == 401 and denied.json() == {
            "error": {"code": "unauthorized", "message": denied.json()["error"]["message"]}
        }
        assert "x-api-key" in denied.json()["error"]["message"]
        openai = client.post("/v1/embeddings", json={"input": "a", "model": "tiny-shapes"})
        assert openai.status_code == 401 and openai.json()["error"]["type"] == "authentication_error"
        assert client.post("/endpoints/local/invocations", json={"texts": ["a"]}).status_code == 401
        # health checks, the container ping and the API docs stay open
        assert client.get("/health").status_code == 200 and wait_healthy(client).status_code == 200
        assert client.get("/swagger").status_code == 200


def test_cors_preflights_need_no_key_as_in_api_gateway(tiny: Any) -> None:
    settings = Settings(api_key=KEY, cors_allow_origin="http://app.example")
    with (
        serving(tiny, settings, local_model=lambda: tiny, workers=2) as running,
        httpx.Client(base_url=running.url, timeout=60) as client,
    ):
        preflight = client.options(
            "/v1/embeddings",
            headers={
                "origin": "http://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type,x-stainless-retry-count",
            },
        )
        assert preflight.status_code < 300, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-stainless-retry-count", "x-stainless-os"} <= allowed
        denied = client.post("/embed/text", json={"text": "a"}, headers={"origin": "http://app.example"})
        assert denied.status_code == 401  # the real request still needs the key
        assert client.post("/endpoints/local/invocations", json={"texts": ["a"]}).status_code == 401


@pytest.mark.parametrize(
    "headers", [{"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}], ids=["x-api-key", "bearer"]
)
def test_the_right_key_passes(keyed: Running, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60, headers=headers) as client:
        response = client.post("/embed/text", json={"text": "a red circle"})
        assert response.status_code == 200 and response.json()["model"] == "tiny-shapes"


def test_boto3_signing_with_the_key_as_access_key_reaches_the_emulation(keyed: Running) -> None:
    import boto3
    from botocore.exceptions import ClientError

    def client(access_key: str) -> Any:
        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=keyed.url,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key="any",
        )

    with contextlib.closing(client(KEY)) as good:
        ok = good.invoke_endpoint(EndpointName="local", ContentType="application/json", Body=b'{"texts": ["a"]}')
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as caught, contextlib.closing(client("AKIAOTHER")) as other:
        other.invoke_endpoint(EndpointName="local", ContentType="application/json", Body=b'{"texts": ["a"]}')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
