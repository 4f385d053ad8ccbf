"""Request models are strict and closed; rendered response bodies match the documented models."""

from __future__ import annotations

import json
import math
from array import array

import pytest
from pydantic import ValidationError

from omnisearch_embed import render
from omnisearch_embed.embeddings import Embeddings, decode_matrix
from omnisearch_embed.errors import EmbedError
from omnisearch_embed.render import batch_image_body, batch_text_body, image_body, text_body, vector_json, vectors_json
from omnisearch_embed.schemas import (
    BatchImageResponse,
    BatchTextRequest,
    BatchTextResponse,
    ImageEmbedRequest,
    ImageEmbedResponse,
    TextEmbedRequest,
    TextEmbedResponse,
)

# float32 values with long reprs, a tiny one and a negative zero: JSON text must round-trip exactly
ROWS = [array("f", row).tolist() for row in ([0.2035275847, -1.5e-08, 1.0], [-0.0, 2.0, -0.45656189])]
EMB = Embeddings(vectors=ROWS, model="ViT-B-32/openai", service="sagemaker", dimension=3, truncated=[False, True])
ONE = Embeddings(vectors=ROWS[:1], model="m", service="local", dimension=3, truncated=[True])


def test_text_request_defaults() -> None:
    request = TextEmbedRequest.model_validate({"text": "hi"})
    assert (request.text, request.normalize, request.encoding) == ("hi", True, "float")


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({}, "missing"),
        ({"text": 3}, "string_type"),
        ({"text": "a", "normalize": "true"}, "bool_type"),  # strict: no string-to-bool coercion
        ({"text": "a", "encoding": "hex"}, "literal_error"),
        ({"text": "a", "normalise": False}, "extra_forbidden"),
    ],
)
def test_text_request_refuses(body: dict, error_type: str) -> None:
    with pytest.raises(ValidationError) as info:
        TextEmbedRequest.model_validate(body)
    assert error_type in {e["type"] for e in info.value.errors()}


def test_batch_text_items_must_be_strings() -> None:
    with pytest.raises(ValidationError):
        BatchTextRequest.model_validate({"texts": ["a", 1]})


@pytest.mark.parametrize("body", [{}, {"image": "abc", "s3_uri": "s3://b/k"}])
def test_image_request_needs_exactly_one_source(body: dict) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ImageEmbedRequest.model_validate(body)


def test_image_request_ref_is_whichever_was_given() -> None:
    assert ImageEmbedRequest.model_validate({"s3_uri": "s3://b/k.png"}).ref == "s3://b/k.png"
    assert ImageEmbedRequest.model_validate({"image": "aGk="}).ref == "aGk="


def test_text_body_matches_its_model_and_round_trips_the_floats() -> None:
    body = text_body(ONE, "float")
    assert TextEmbedResponse.model_validate_json(body)
    doc = json.loads(body)
    assert doc == {"embedding": ROWS[0], "dimension": 3, "model": "m", "service": "local", "truncated": True}
    assert list(doc) == ["embedding", "dimension", "model", "service", "truncated"]


def test_image_body_base64_is_little_endian_float32_without_truncated() -> None:
    body = image_body(EMB, "base64")
    doc = ImageEmbedResponse.model_validate_json(body).model_dump()
    assert "truncated" not in json.loads(body)
    assert decode_matrix(doc["embedding"], 3) == [ROWS[0]]


def test_batch_bodies_keep_order_and_count() -> None:
    text = json.loads(batch_text_body(EMB, "base64"))
    BatchTextResponse.model_validate(text)
    assert text["count"] == 2 and text["truncated"] == [False, True]
    assert [decode_matrix(v, 3)[0] for v in text["embeddings"]] == ROWS
    image = json.loads(batch_image_body(EMB, "float"))
    BatchImageResponse.model_validate(image)
    assert image["embeddings"] == ROWS and "truncated" not in image
    assert math.copysign(1.0, image["embeddings"][1][0]) == -1.0  # -0.0 survives


def test_batch_text_without_flags_reports_false() -> None:
    plain = Embeddings(vectors=ROWS, model="m", service="local", dimension=3)
    assert json.loads(batch_text_body(plain, "float"))["truncated"] == [False, False]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("encoding", ["float", "int8", "ubinary"])
def test_non_finite_values_are_a_model_error_not_invalid_json(bad: float, encoding: str) -> None:
    one = lambda: vector_json([0.5, bad], encoding)  # noqa: E731
    rows = lambda: vectors_json([[0.5, 1.0], [bad, 0.5]], encoding)  # noqa: E731
    for render_it in (one, rows):
        with pytest.raises(EmbedError) as info:
            render_it()
        assert (info.value.status, info.value.code) == (502, "bad_model_response")


def floats_in(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, (list, tuple, array)):
        return [f for item in value for f in floats_in(item)]
    return []


@pytest.mark.parametrize("encoding", ["int8", "ubinary"])
def test_the_floats_are_checked_not_serialised_to_look_for_nan(monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    serialised: list[object] = []
    real = render.to_json

    def recording(value: object) -> bytes:
        serialised.append(value)
        return real(value)

    monkeypatch.setattr(render, "to_json", recording)
    vectors_json([[0.5, -0.25], [1.0, 0.0]], encoding)
    assert [f for value in serialised for f in floats_in(value)] == []  # int8 values only, never a float vector


def test_strings_in_fields_are_escaped() -> None:
    odd = Embeddings(vectors=[[1.0]], model='we"ird\\model', service="local", dimension=1)
    assert json.loads(image_body(odd, "float"))["model"] == 'we"ird\\model'
