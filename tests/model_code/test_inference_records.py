"""Batch Transform records through inference.py: JSON lines of texts, raw image objects, one line out per record."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from omnisearch_testkit.images import image_bytes

JSONLINES = "application/jsonlines"


def _lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().split("\n") if line.strip()]


def _vector(doc: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(doc["embedding"]), dtype="<f4")


def test_json_lines_answer_one_line_per_record_in_order_with_ids(serve, inference, tiny):
    body = b'{"id": "a", "text": "a red circle"}\n"a blue star"\r\n\n{"id": 7, "text": "a green square"}\n'
    raw, content_type = serve(body, JSONLINES, JSONLINES)
    assert content_type == JSONLINES and raw.endswith(b"\n")
    docs = _lines(raw)
    assert [d.get("id") for d in docs] == ["a", None, 7]
    direct = inference.predict_fn(inference.Request("texts", ["a red circle", "a blue star", "a green square"]), tiny)
    for doc, row in zip(docs, direct.vectors, strict=True):
        assert doc["model"] == "tiny-shapes" and doc["dimension"] == 64 and doc["truncated"] is False
        np.testing.assert_allclose(_vector(doc), row, atol=1e-6)


def test_a_bad_record_gets_an_error_line_and_the_others_still_answer(serve):
    body = b'{"id": "ok", "text": "a red circle"}\n{not json\n{"id": "e", "text": "  "}\n[1]\n{"id": "n"}\n'
    docs = _lines(serve(body, JSONLINES, JSONLINES)[0])
    assert len(docs) == 5 and "embedding" in docs[0]
    assert [d.get("error", {}).get("code") for d in docs[1:]] == [
        "invalid_record",
        "empty_text",
        "invalid_record",
        "invalid_record",
    ]
    assert docs[2]["id"] == "e" and docs[4]["id"] == "n"


def test_long_text_record_is_flagged_truncated(serve):
    docs = _lines(serve(json.dumps({"id": 1, "text": "red " * 100}).encode(), JSONLINES, JSONLINES)[0])
    assert docs[0]["truncated"] is True and docs[0]["tokens"] == 77


def test_raw_image_asked_for_json_lines_is_a_record(serve, inference, tiny):
    png = image_bytes()
    raw, content_type = serve(png, "image/png", JSONLINES)
    (doc,) = _lines(raw)
    assert content_type == JSONLINES and "id" not in doc
    expected = inference.predict_fn(inference.Request("images", [png]), tiny).vectors[0]
    np.testing.assert_allclose(_vector(doc), expected, atol=1e-6)
    (bad,) = _lines(serve(b"not an image at all", "application/x-image", JSONLINES)[0])
    assert bad["error"]["code"] == "invalid_image" and "not a readable image" in bad["error"]["message"]


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/x-npy"])
def test_raw_image_asked_for_anything_else_keeps_the_real_time_contract(serve, inference, tiny, accept):
    with pytest.raises(inference.InputError, match=r"images\[0\] is not a readable image") as caught:
        serve(b"not an image at all", "image/png", accept)
    assert caught.value.code == "invalid_image" and caught.value.status_code == 422
    png = image_bytes()
    raw, content_type = serve(png, "image/png", accept)
    expected = inference.predict_fn(inference.Request("images", [png]), tiny).vectors
    if content_type == "application/x-npy":
        np.testing.assert_array_equal(np.load(io.BytesIO(raw)), expected)
    else:
        doc = json.loads(raw)
        assert doc["dimension"] == 64 and doc["truncated"] is None and doc["model"] == "tiny-shapes"
        np.testing.assert_allclose(np.asarray(doc["embeddings"], np.float32), expected, atol=1e-6)


def test_json_lines_asked_for_json_answer_as_one_batch(serve):
    doc = json.loads(serve(b'"a red circle"\n{"text": "a blue star"}\n', JSONLINES, "application/json")[0])
    assert len(doc["embeddings"]) == 2 and doc["truncated"] == [False, False] and doc["tokens"][0] > 2
