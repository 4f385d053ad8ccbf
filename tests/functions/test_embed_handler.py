"""Every route through ``lambda_handler`` with the events in events/, and the bad-input table.

The app is built by the handler module's own ``build_app`` around a deterministic StaticBackend; S3 goes
through moto. Each refusal is followed by a good request on the same warm app, which must still succeed.
SageMaker end to end: test_embed_sagemaker.py; metrics, logs and cold start: test_embed_runtime.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.embeddings import decode_matrix
from omnisearch_testkit.events import (
    MULTIPART_TYPE,
    S3_BUCKET,
    S3_KEY,
    load_event,
    multipart_body,
    sample_png,
)
from omnisearch_testkit.images import image_bytes, png_claiming, truncated_png
from tests.helpers.backends import StaticBackend, vector_for
from tests.helpers.lambda_app import SETTINGS, invoke, text_vec, use_backend

PNG = sample_png()
PNG_B64 = base64.b64encode(PNG).decode()
MULTIPART_NO_BOUNDARY = {"Content-Type": "multipart/form-data"}


@pytest.fixture
def backend() -> StaticBackend:
    return StaticBackend()


@pytest.fixture
def call(backend: StaticBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``call(event) -> (status, body)`` through lambda_handler, with moto S3 holding the sample PNG."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=S3_BUCKET)
        s3.put_object(Bucket=S3_BUCKET, Key=S3_KEY, Body=PNG)
        use_backend(monkeypatch, backend)
        yield invoke


# ------------------------------------------------------------------------------------------- routes
def test_embed_text(call: Any) -> None:
    status, body = call(load_event("embed_text"))
    assert status == 200
    assert body == {
        "embedding": text_vec("a red circle"),
        "dimension": 8,
        "model": "static-test",
        "service": "local",
        "truncated": False,
    }


def test_embed_text_from_a_base64_body(call: Any) -> None:
    status, body = call(load_event("embed_text_base64"))
    assert status == 200 and body["embedding"] == text_vec("a blue square")


def test_embed_text_options(call: Any, backend: StaticBackend) -> None:
    status, body = call(load_event("embed_text", body={"text": "x y", "normalize": False, "encoding": "base64"}))
    assert status == 200
    assert decode_matrix(body["embedding"], 8) == [text_vec("x y", normalize=False)]
    assert backend.calls == [("texts", ["x y"], False)]


@pytest.mark.parametrize("name", ["embed_image_multipart", "embed_image_raw_png", "embed_image_json", "embed_image_s3"])
def test_embed_image_every_way(call: Any, backend: StaticBackend, name: str) -> None:
    status, body = call(load_event(name))
    assert status == 200, body
    assert body == {"embedding": vector_for("image", PNG), "dimension": 8, "model": "static-test", "service": "local"}
    assert backend.calls == [("images", [PNG], True)]


def test_multipart_options_and_raw_query_options(call: Any, backend: StaticBackend) -> None:
    form = multipart_body({"file": ("c.png", PNG, "image/png")}, {"normalize": "false", "encoding": "base64"})
    status, body = call(load_event("embed_image_multipart", body=form))
    assert status == 200 and decode_matrix(body["embedding"], 8) == [vector_for("image", PNG, 8, False)]
    status, body = call(load_event("embed_image_raw_png", query={"encoding": "base64"}))
    assert status == 200 and decode_matrix(body["embedding"], 8) == [vector_for("image", PNG)]


def test_animated_gif_upload(call: Any) -> None:
    from omnisearch_testkit.images import animated

    status, _ = call(load_event("embed_image_raw_png", body=animated("GIF"), headers={"Content-Type": "image/gif"}))
    assert status == 200


def test_embed_batch_text_keeps_order(call: Any) -> None:
    texts = ["a red circle", "a green triangle", "a blue square"]
    status, body = call(load_event("embed_batch_text"))
    assert status == 200
    assert body["embeddings"] == [text_vec(t) for t in texts]
    assert (body["count"], body["truncated"], body["dimension"]) == (3, [False, False, False], 8)


def test_embed_batch_image_mixes_inline_and_s3(call: Any) -> None:
    status, body = call(load_event("embed_batch_image"))
    assert status == 200, body
    assert body["embeddings"] == [vector_for("image", PNG)] * 2 and body["count"] == 2


def test_health_and_deep_health(call: Any, backend: StaticBackend) -> None:
    status, body = call(load_event("health"))
    assert status == 200 and body["status"] == "ok" and body["model"] == "static-test" and body.get("deep") is None
    assert backend.calls == []
    status, body = call(load_event("health_deep"))
    assert status == 200 and body["deep"]["ok"] is True and body["deep"]["latency_ms"] >= 0
    assert backend.calls == [("texts", ["health"], True)]


def test_deep_health_down_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from omnisearch_embed.errors import BackendUnavailableError

    broken = StaticBackend(fail_with=BackendUnavailableError("gone", code="endpoint_unavailable"))
    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(broken, SETTINGS))
    response = embed_app.lambda_handler(load_event("health_deep"), LambdaContext())
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["deep"]["error"]["code"] == "endpoint_unavailable"


def test_swagger_spec_lists_the_routes_with_their_response_models(call: Any) -> None:
    status, spec = call(load_event("health", path="/swagger", query={"format": "json"}))
    assert status == 200
    assert {"/embed/text", "/embed/image", "/embed/batch/text", "/embed/batch/image", "/health"} <= set(spec["paths"])
    ok = spec["paths"]["/embed/text"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/TextEmbedResponse")
    assert spec["paths"]["/embed/text"]["post"]["responses"]["413"]
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert spec["servers"] == [{"url": "/dev"}]


def test_swagger_ui_page(call: Any) -> None:
    response = embed_app.lambda_handler(load_event("health", path="/swagger"), LambdaContext())
    assert response["statusCode"] == 200 and '<div id="swagger-ui">' in response["body"]
    assert "/embed/batch/image" in response["body"]


# ------------------------------------------------------------------------------------ bad inputs
TEN_THOUSAND = ("lorem " * 2000)[:10_000]
BAD_INPUTS = [
    ("invalid JSON", "embed_text", {"body": '{"text": "a"'}, 400, "invalid_json"),
    ("missing field", "embed_text", {"body": {"normalize": True}}, 422, "validation_error"),
    ("extra field", "embed_text", {"body": {"text": "a", "colour": "red"}}, 422, "validation_error"),
    ("wrong type", "embed_text", {"body": {"text": ["a"]}}, 422, "validation_error"),
    ("wrong bool type", "embed_text", {"body": {"text": "a", "normalize": "yes"}}, 422, "validation_error"),
    ("empty text", "embed_text", {"body": {"text": ""}}, 400, "empty_text"),
    ("whitespace text", "embed_text", {"body": {"text": "  \t"}}, 400, "empty_text"),
    ("10,001-character text", "embed_text", {"body": {"text": TEN_THOUSAND + "x"}}, 413, "text_too_long"),
    ("empty batch", "embed_batch_text", {"body": {"texts": []}}, 400, "empty_batch"),
    ("oversized batch", "embed_batch_text", {"body": {"texts": ["a"] * 257}}, 413, "too_many_items"),
    ("empty image batch", "embed_batch_image", {"body": {"images": []}}, 400, "empty_batch"),
    ("invalid base64", "embed_image_json", {"body": {"image": "@@not base64@@"}}, 400, "invalid_base64"),
    ("non-image bytes", "embed_image_raw_png", {"body": b"GIF? no, plain text"}, 422, "invalid_image"),
    ("truncated PNG", "embed_image_raw_png", {"body": truncated_png()}, 422, "corrupt_image"),
    (
        "20000x20000 PNG header",
        "embed_image_raw_png",
        {"body": png_claiming(20000, 20000)},
        413,
        "image_too_many_pixels",
    ),
    (
        "unsupported format",
        "embed_image_json",
        {"body": {"image": base64.b64encode(image_bytes("BMP")).decode()}},
        415,
        "unsupported_image_format",
    ),
    (
        "unsupported image content type",
        "embed_image_raw_png",
        {"headers": {"Content-Type": "image/bmp"}},
        415,
        "unsupported_image_format",
    ),
    (
        "s3 outside the allow list",
        "embed_image_json",
        {"body": {"s3_uri": "s3://other-bucket/cat.png"}},
        403,
        "s3_bucket_not_allowed",
    ),
    (
        "missing s3 key",
        "embed_image_json",
        {"body": {"s3_uri": f"s3://{S3_BUCKET}/nope.png"}},
        404,
        "s3_object_not_found",
    ),
    (
        "s3 key that is not Unicode",
        "embed_image_json",
        {"body": {"s3_uri": f"s3://{S3_BUCKET}/\ud800.png"}},
        400,
        "invalid_s3_uri",
    ),
    ("http URL", "embed_image_json", {"body": {"image": "https://example.com/cat.png"}}, 400, "url_not_supported"),
    (
        "http URL in a batch",
        "embed_batch_image",
        {"body": {"images": [PNG_B64, "http://x/y.png"]}},
        400,
        "url_not_supported",
    ),
    (
        "both image and s3_uri",
        "embed_image_json",
        {"body": {"image": PNG_B64, "s3_uri": "s3://a/b"}},
        422,
        "validation_error",
    ),
    ("oversized JSON body", "embed_batch_text", {"body": {"texts": ["a" * 9000] * 120}}, 413, "request_too_large"),
    ("oversized raw body", "embed_image_raw_png", {"body": b"\x89PNG" + b"\0" * (1 << 20)}, 413, "request_too_large"),
    ("wrong content type", "embed_text", {"headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    (
        "wrong content type for images",
        "embed_image_raw_png",
        {"headers": {"Content-Type": "application/pdf"}},
        415,
        "unsupported_media_type",
    ),
    (
        "multipart without file",
        "embed_image_multipart",
        {"body": multipart_body({"image": ("c.png", PNG, "image/png")})},
        400,
        "missing_file",
    ),
    (
        "multipart cut short",
        "embed_image_multipart",
        {"body": multipart_body({"file": ("c.png", PNG, "image/png")})[:-40]},
        400,
        "invalid_multipart",
    ),
    (
        "multipart unknown option",
        "embed_image_multipart",
        {"body": multipart_body({"file": ("c.png", PNG, "image/png")}, {"size": "9"})},
        400,
        "invalid_option",
    ),
    ("body not UTF-8", "embed_text", {"body": b"\xff\xfe{}"}, 400, "invalid_body"),
    ("lone surrogate", "embed_text", {"body": '{"text": "a\\ud800"}'}, 400, "invalid_text"),
    ("lone surrogate in a batch", "embed_batch_text", {"body": {"texts": ["a", "\udfff b"]}}, 400, "invalid_text"),
    ("JSON nested too deeply", "embed_text", {"body": '{"text": ' + "[" * 100_000}, 400, "invalid_json"),
    (
        "integer of 5,000 digits",
        "embed_text",
        {"body": '{"text": "a", "normalize": ' + "9" * 5000 + "}"},
        400,
        "invalid_json",
    ),
    (
        "multipart without boundary to a JSON route",
        "embed_text",
        {"headers": MULTIPART_NO_BOUNDARY},
        415,
        "unsupported_media_type",
    ),
    (
        "a form to a JSON route",
        "embed_batch_text",
        {"body": multipart_body({"texts": ("t.txt", b"a", "text/plain")}), "headers": {"Content-Type": MULTIPART_TYPE}},
        415,
        "unsupported_media_type",
    ),
    (
        "urlencoded to a JSON route",
        "embed_text",
        {"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
    ),
    ("image: invalid JSON", "embed_image_json", {"body": '{"image": '}, 400, "invalid_json"),
    ("image: empty JSON body", "embed_image_json", {"body": ""}, 422, "validation_error"),
    ("image: JSON not UTF-8", "embed_image_json", {"body": b"\xff\xfe{}"}, 400, "invalid_body"),
    ("image: JSON nested too deeply", "embed_image_json", {"body": "[" * 100_000}, 400, "invalid_json"),
    (
        "image: multipart without boundary",
        "embed_image_multipart",
        {"headers": MULTIPART_NO_BOUNDARY},
        400,
        "invalid_multipart",
    ),
    (
        "image: multipart with another boundary",
        "embed_image_multipart",
        {"headers": {"Content-Type": "multipart/form-data; boundary=elsewhere"}},
        400,
        "invalid_multipart",
    ),
    ("base64 body that is not JSON", "embed_text_base64", {"body": "not json"}, 400, "invalid_json"),
    ("deep not a boolean", "health", {"query": {"deep": "maybe"}}, 422, "validation_error"),
    ("unknown route", "embed_text", {"path": "/embed/video"}, 404, "route_not_found"),
    ("wrong method", "embed_text", {"method": "GET"}, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(
    ("case", "name", "overrides", "status", "code"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_gets_status_and_code_and_the_next_request_still_works(
    call: Any, case: str, name: str, overrides: dict[str, Any], status: int, code: str
) -> None:
    got_status, body = call(load_event(name, **overrides))
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    good_status, good = call(load_event("embed_text"))
    assert good_status == 200 and good["embedding"] == text_vec("a red circle")


def test_ten_thousand_characters_are_accepted_truncated_and_flagged(call: Any) -> None:
    status, body = call(load_event("embed_text", body={"text": TEN_THOUSAND}))
    assert status == 200 and body["truncated"] is True


def test_method_not_allowed_names_the_allowed_methods() -> None:
    app = embed_app.build_app(StaticBackend(), SETTINGS)
    response = app.resolve(load_event("embed_text", method="DELETE"), LambdaContext())
    assert response["statusCode"] == 405
    assert response["multiValueHeaders"]["Allow"] == ["POST"]


def test_unexpected_exception_is_a_500_without_internals(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Buggy(StaticBackend):
        def embed_texts(self, texts, *, normalize=True):  # type: ignore[override]
            raise KeyError("/var/task/secret_module.py line 12")

    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(Buggy(), SETTINGS))
    response = embed_app.lambda_handler(load_event("embed_text"), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 500
    assert body == {"error": {"code": "internal_error", "message": "internal error; it has been logged"}}


@pytest.mark.parametrize(
    ("overrides", "status", "error_type"),
    [
        ({"path": "/v1/nothing"}, 404, "invalid_request_error"),
        ({"path": "/v1/embeddings", "body": "{oops"}, 400, "invalid_request_error"),
    ],
)
def test_v1_paths_get_openai_error_shape(call: Any, overrides: dict[str, Any], status: int, error_type: str) -> None:
    got, body = call(load_event("embed_text", **overrides))
    assert got == status
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["type"] == error_type
