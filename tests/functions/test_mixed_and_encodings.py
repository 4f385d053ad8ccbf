"""``POST /embed/batch``, ``/v1/embeddings`` ``modality: auto``, and int8 / ubinary encodings, through the handler."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from omnisearch_embed.openai_schemas import OpenAIEmbeddingResponse
from omnisearch_embed.schemas import BatchTextResponse, ImageEmbedResponse, TextEmbedResponse
from omnisearch_testkit.events import S3_BUCKET, load_event, sample_png
from omnisearch_testkit.images import truncated_png
from tests.helpers.backends import StaticBackend, vector_for
from tests.helpers.lambda_app import invoke, use_backend

PNG = sample_png()
URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
TRUNCATED = base64.b64encode(truncated_png()).decode()


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> StaticBackend:
    static = StaticBackend()
    use_backend(monkeypatch, static)
    return static


def test_a_mixed_batch_answers_in_input_order(backend: StaticBackend) -> None:
    items = [{"image": URI}, {"text": "a red circle"}, {"image": base64.b64encode(PNG).decode()}, {"text": "star"}]
    status, body = invoke(load_event("embed_batch_mixed", body={"items": items}))
    assert status == 200, body
    assert body["embeddings"] == [
        vector_for("image", PNG),
        vector_for("text", b"a red circle"),
        vector_for("image", PNG),
        vector_for("text", b"star"),
    ]
    assert body["truncated"] == [False] * 4 and body["count"] == 4
    assert [kind for kind, _, _ in backend.calls] == ["images", "texts"]
    assert BatchTextResponse.model_validate(body).model_dump() == body


@pytest.mark.parametrize(
    ("items", "status", "code", "where"),
    [
        ([{"text": "a"}, {"text": "b"}, {"image": TRUNCATED}], 422, "corrupt_image", "items[2]"),
        ([{"image": URI}, {"text": ""}], 400, "empty_text", "items[1]"),
        ([{"image": URI}, {"image": f"s3://not-{S3_BUCKET}/a.png"}], 403, "s3_bucket_not_allowed", "items[1]"),
        ([{"text": "a", "image": URI}], 422, "validation_error", None),
        ([], 400, "empty_batch", None),
    ],
)  # fmt: skip
def test_a_bad_item_fails_the_mixed_batch_naming_its_index(
    backend: StaticBackend, items: list[dict[str, str]], status: int, code: str, where: str | None
) -> None:
    got, body = invoke(load_event("embed_batch_mixed", body={"items": items}))
    assert (got, body["error"]["code"]) == (status, code), body
    if where and code != "s3_bucket_not_allowed":  # that message names the URI itself
        assert body["error"]["message"].startswith(where), body
    assert backend.calls == []


def test_v1_auto_mixes_texts_and_image_uris_in_order(backend: StaticBackend) -> None:
    body = {"input": ["a red circle", URI, "star"], "model": "static-test", "modality": "auto"}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert status == 200, answer
    assert [d["index"] for d in answer["data"]] == [0, 1, 2]
    assert [d["embedding"] for d in answer["data"]] == [
        vector_for("text", b"a red circle"),
        vector_for("image", PNG),
        vector_for("text", b"star"),
    ]
    assert answer["usage"]["prompt_tokens"] == 5 + 0 + 3


def test_v1_auto_names_the_bad_input(backend: StaticBackend) -> None:
    bad = "data:image/png;base64," + base64.b64encode(truncated_png()).decode()
    body = {"input": ["a red circle", "star", bad], "model": "static-test", "modality": "auto"}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert status == 422 and answer["error"]["param"] == "input[2]", answer
    assert answer["error"]["type"] == "invalid_request_error"


def vectors(body: dict[str, Any]) -> list[list[float]]:
    return [d["embedding"] for d in body["data"]]


def test_int8_returns_values_and_a_scale_per_vector(backend: StaticBackend) -> None:
    texts = ["a red circle", "star"]
    status, body = invoke(load_event("embed_batch_text", body={"texts": texts, "encoding": "int8"}))
    assert status == 200, body
    for q, scale, text in zip(body["embeddings"], body["scales"], texts, strict=True):
        original = np.asarray(vector_for("text", text.encode()))
        assert all(isinstance(x, int) and -127 <= x <= 127 for x in q)
        assert scale == pytest.approx(np.abs(original).max() / 127)
        assert np.abs(np.asarray(q) * scale - original).max() <= scale / 2 + 1e-9
    assert BatchTextResponse.model_validate(body).model_dump() == body


def test_ubinary_is_packed_sign_bits(backend: StaticBackend) -> None:
    status, body = invoke(load_event("embed_text", body={"text": "a red circle", "encoding": "ubinary"}))
    assert status == 200, body
    expected = np.packbits(np.asarray(vector_for("text", b"a red circle")) > 0).tobytes()
    assert base64.b64decode(body["embedding"]) == expected and "scale" not in body
    assert TextEmbedResponse.model_validate(body).model_dump() == body


def test_a_single_image_in_int8_carries_its_scale(backend: StaticBackend) -> None:
    status, body = invoke(load_event("embed_image_raw_png", query={"encoding": "int8"}))
    assert status == 200, body
    assert np.asarray(body["embedding"]) * body["scale"] == pytest.approx(vector_for("image", PNG), abs=body["scale"])
    assert ImageEmbedResponse.model_validate(body).model_dump() == body


@pytest.mark.parametrize("fmt", ["int8", "ubinary"])
def test_v1_takes_the_compact_formats(backend: StaticBackend, fmt: str) -> None:
    body = {"input": ["a red circle", "star"], "model": "static-test", "encoding_format": fmt}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert status == 200, answer
    assert OpenAIEmbeddingResponse.model_validate(answer).model_dump() == answer
    first = answer["data"][0]
    if fmt == "int8":
        assert isinstance(first["scale"], float) and all(isinstance(x, int) for x in first["embedding"])
    else:
        assert len(base64.b64decode(first["embedding"])) == 1 and "scale" not in first


def test_int8_takes_the_models_own_dimensions(backend: StaticBackend) -> None:
    body = {"input": "a red circle", "model": "static-test", "encoding_format": "int8"}
    status, plain = invoke(load_event("v1_embeddings", body=body))
    status_with, answer = invoke(load_event("v1_embeddings", body={**body, "dimensions": 8}))  # StaticBackend's own
    assert (status, status_with) == (200, 200), answer
    assert answer["data"] == plain["data"] and isinstance(answer["data"][0]["scale"], float)


def test_int8_with_another_dimension_is_refused_for_the_real_reason(backend: StaticBackend) -> None:
    body = {"input": "a red circle", "model": "static-test", "encoding_format": "int8", "dimensions": 4}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, "int8_with_dimensions", "dimensions")
    message = answer["error"]["message"]
    assert "gives 8-d vectors" in message and "cannot be shortened" in message and "send 8" in message
    status, answer = invoke(load_event("v1_embeddings", body={**body, "encoding_format": "float"}))
    assert (status, answer["error"]["code"]) == (400, "unsupported_dimensions")


JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"
WEBP_HEAD = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ("https://example.com/cat.png", "url_not_supported"),
        ("  HTTP://example.com/a%20cat.jpg?size=large\n", "url_not_supported"),
        (base64.b64encode(PNG).decode(), "invalid_image_reference"),
        (base64.encodebytes(PNG).decode(), "invalid_image_reference"),  # wrapped at 76 characters
        (base64.b64encode(JPEG_HEAD).decode(), "invalid_image_reference"),
        (base64.urlsafe_b64encode(WEBP_HEAD).decode().rstrip("="), "invalid_image_reference"),
        (base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00").decode(), "invalid_image_reference"),
    ],
    ids=["https", "HTTP, padded", "png", "png wrapped", "jpeg", "webp url-safe", "gif"],
)
def test_v1_auto_refuses_what_it_would_have_embedded_as_text(backend: StaticBackend, item: str, code: str) -> None:
    body = {"input": ["a red circle", item], "model": "static-test", "modality": "auto"}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, code, "input[1]"), answer
    assert answer["error"]["message"].startswith("input[1] ")
    assert backend.calls == []


def test_v1_auto_still_embeds_texts_that_only_mention_a_url_or_look_encoded(backend: StaticBackend) -> None:
    texts = [
        "see https://example.com/cat.png",
        "Supercalifragilisticexpialidocious",
        base64.b64encode(b"x" * 30).decode(),
    ]
    upper = "DATA:image/png;base64," + base64.b64encode(PNG).decode()
    body = {"input": [*texts, upper], "model": "static-test", "modality": "auto"}
    status, answer = invoke(load_event("v1_embeddings", body=body))
    assert status == 200, answer
    assert [d["embedding"] for d in answer["data"]] == [
        *(vector_for("text", t.encode()) for t in texts),
        vector_for("image", PNG),
    ]
