"""``/v1/embeddings`` and ``/v1/models`` through ``lambda_handler`` with API Gateway events.

Same app as the ``/embed/*`` routes, around a deterministic StaticBackend; errors must come back in
OpenAI's shape with the statuses OpenAI uses (the SDK-level checks live in tests/local_server).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.embeddings import decode_matrix
from omnisearch_embed.errors import ThrottledError
from omnisearch_embed.openai_schemas import OpenAIEmbeddingResponse
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import load_event, sample_png
from tests.helpers.backends import StaticBackend, token_count, vector_for

SETTINGS = Settings(allowed_s3_buckets=("omnisearch-test-images",))
PNG_URI = "data:image/png;base64," + base64.b64encode(sample_png()).decode()


@pytest.fixture
def backend() -> StaticBackend:
    return StaticBackend(model_id="ViT-B-32/openai")


@pytest.fixture
def call(backend: StaticBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(backend, SETTINGS))

    def invoke(body: dict[str, Any] | None = None, *, name: str = "v1_embeddings", **kw: Any) -> tuple[int, Any]:
        event = load_event(name, body=body, **kw) if body is not None else load_event(name, **kw)
        response = embed_app.lambda_handler(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    yield invoke


def test_event_file_embeds_in_openai_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(StaticBackend(model_id="tiny-shapes"), SETTINGS))
    response = embed_app.lambda_handler(load_event("v1_embeddings"), LambdaContext())
    status, body = response["statusCode"], json.loads(response["body"])
    assert status == 200
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == list(range(len(body["data"])))
    assert all(d["object"] == "embedding" for d in body["data"])


def test_list_input_keeps_order_and_counts_tokens(call: Any) -> None:
    texts = ["a red circle", "a photo of a small blue star", "green"]
    status, body = call({"input": texts, "model": "ViT-B-32/openai", "encoding_format": "float"})
    assert status == 200
    assert [d["embedding"] for d in body["data"]] == [vector_for("text", t.encode()) for t in texts]
    expected_tokens = sum(token_count(t) for t in texts)
    assert body["usage"] == {"prompt_tokens": expected_tokens, "total_tokens": expected_tokens}
    assert body["model"] == "ViT-B-32/openai"
    assert OpenAIEmbeddingResponse.model_validate(body).model_dump() == body  # the documented shape, exactly


def test_base64_is_little_endian_float32_of_the_same_vector(call: Any) -> None:
    status, body = call({"input": "a red circle", "model": "vit-b-32", "encoding_format": "base64"})
    assert status == 200
    assert decode_matrix(body["data"][0]["embedding"], 8) == [vector_for("text", b"a red circle")]


def test_image_modality_with_data_uri(call: Any, backend: StaticBackend) -> None:
    status, body = call({"input": [PNG_URI], "model": "ViT-B-32", "modality": "image"})
    assert status == 200
    assert body["data"][0]["embedding"] == vector_for("image", sample_png())
    assert body["usage"]["prompt_tokens"] == 0
    assert backend.calls[-1][0] == "images"


def test_models_list_and_retrieve(call: Any) -> None:
    status, body = call(name="v1_models")
    assert status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["ViT-B-32/openai"]
    assert body["data"][0]["object"] == "model"


def openai_error(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    ("request_body", "status", "code", "param"),
    [
        ({"input": "x", "model": "text-embedding-3-small"}, 404, "model_not_found", "model"),
        ({"input": [1, 2, 3], "model": "ViT-B-32"}, 400, "token_input_not_supported", "input"),
        ({"input": [[1, 2], [3]], "model": "ViT-B-32"}, 400, "token_input_not_supported", "input"),
        ({"input": "x", "model": "ViT-B-32", "dimensions": 256}, 400, "unsupported_dimensions", "dimensions"),
        ({"input": [], "model": "ViT-B-32"}, 400, "empty_batch", "input"),
        ({"input": ["ok", ""], "model": "ViT-B-32"}, 400, "empty_text", "input[1]"),
        ({"input": ["ok", "\ud800"], "model": "ViT-B-32"}, 400, "invalid_text", "input[1]"),
        ({"input": ["https://x/cat.png"], "model": "ViT-B-32", "modality": "image"}, 400, None, "input[0]"),
        ({"input": ["x"] * 300, "model": "ViT-B-32"}, 413, "too_many_items", "input"),
        ({"model": "ViT-B-32"}, 400, "validation_error", "input"),
        ({"input": "x", "model": "ViT-B-32", "encoding_format": "int4"}, 400, "validation_error", "encoding_format"),
    ],
)
def test_errors_take_openai_shape_and_status(
    call: Any, request_body: dict[str, Any], status: int, code: str | None, param: str
) -> None:
    got_status, body = call(request_body)
    error = openai_error(body)
    assert got_status == status
    assert error["type"] == ("invalid_request_error" if status < 500 else "api_error")
    if code is not None:
        assert error["code"] == code
    assert error["param"] == param
    # the service keeps serving after each refusal
    assert call({"input": "ok", "model": "ViT-B-32"})[0] == 200


def test_dimensions_equal_to_the_model_is_accepted(call: Any) -> None:
    status, body = call({"input": "x", "model": "ViT-B-32", "dimensions": 8})
    assert status == 200
    assert len(body["data"][0]["embedding"]) == 8


def test_backend_throttling_is_a_rate_limit_error(call: Any, backend: StaticBackend) -> None:
    backend.fail_with = ThrottledError("slow down")
    status, body = call({"input": "x", "model": "ViT-B-32"})
    assert status == 429
    assert openai_error(body)["type"] == "rate_limit_error"


def test_embed_routes_keep_their_own_error_shape(call: Any) -> None:
    status, body = call({"text": ""}, name="embed_text")
    assert status == 400
    assert set(body["error"]) == {"code", "message"}


def test_cors_headers_follow_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(cors_allow_origin="https://app.example.com")
    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(StaticBackend(model_id="tiny-shapes"), settings))
    event = load_event("v1_embeddings", headers={"Origin": "https://app.example.com"})
    response = embed_app.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in response["multiValueHeaders"].items()}
    assert headers["access-control-allow-origin"] == ["https://app.example.com"]

    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(StaticBackend(model_id="tiny-shapes"), SETTINGS))
    response = embed_app.lambda_handler(event, LambdaContext())
    assert "access-control-allow-origin" not in {k.lower() for k in response["multiValueHeaders"]}
