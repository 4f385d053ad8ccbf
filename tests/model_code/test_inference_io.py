"""input_fn and output_fn: the wire protocol, raw image bodies, npy, and refusals that say what is wrong."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from omnisearch_embed.embeddings import decode_matrix
from omnisearch_testkit.images import image_bytes


def test_json_texts_with_options(inference):
    req = inference.input_fn(b'{"texts": ["a", "b"], "normalize": false, "encoding": "base64"}', "application/json")
    assert (req.kind, req.items, req.normalize, req.encoding) == ("texts", ["a", "b"], False, "base64")


def test_json_images_accept_base64_and_data_uris(inference):
    png = image_bytes()
    body = {"images": [base64.b64encode(png).decode(), "data:image/png;base64," + base64.b64encode(png).decode()]}
    req = inference.input_fn(json.dumps(body), "application/json; charset=utf-8")
    assert req.kind == "images" and req.items == [png, png] and req.normalize is True


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/x-image"])
def test_raw_image_body_is_one_image(inference, content_type):
    png = image_bytes()
    req = inference.input_fn(png, content_type)
    assert req.kind == "images" and req.items == [png]


def test_plain_text_body_is_one_text(inference):
    assert inference.input_fn(b"a red star", "text/plain").items == ["a red star"]


@pytest.mark.parametrize(
    ("body", "content_type", "code", "words"),
    [
        (b"{not json", "application/json", "invalid_json", "not valid JSON"),
        (b"[1, 2]", "application/json", "invalid_input", "JSON object"),
        (b'{"texts": ["a"], "images": ["aGk="]}', "application/json", "invalid_input", "exactly one"),
        (b"{}", "application/json", "invalid_input", "exactly one"),
        (b'{"texts": []}', "application/json", "invalid_input", "non-empty list"),
        (b'{"texts": "a"}', "application/json", "invalid_input", "non-empty list"),
        (b'{"texts": ["a", 3]}', "application/json", "invalid_input", "texts[1] must be a string"),
        (b'{"texts": ["a"], "normalize": "yes"}', "application/json", "invalid_input", "normalize"),
        (b'{"texts": ["a"], "encoding": "hex"}', "application/json", "invalid_input", "encoding"),
        (b'{"texts": ["a"], "model": "x"}', "application/json", "invalid_input", "unknown field(s) model"),
        (b'{"images": ["%%%"]}', "application/json", "invalid_base64", "images[0] is not valid base64"),
        (b'{"images": [""]}', "application/json", "invalid_input", "images[0] must be a non-empty"),
        (b"", "image/png", "empty_image", "empty image"),
        (b"abc", "application/xml", "unsupported_media_type", "unsupported content type"),
    ],
)
def test_bad_input_raises_value_error_saying_what_is_wrong(inference, body, content_type, code, words):
    with pytest.raises(ValueError, match=None) as caught:
        inference.input_fn(body, content_type)
    assert isinstance(caught.value, inference.InputError)
    assert words in str(caught.value) and caught.value.code == code
    # the toolkit answers with this status and message
    assert caught.value.status_code == inference.STATUS_BY_CODE.get(code, 400)
    assert json.loads(caught.value.message) == {"code": code, "message": str(caught.value)}


def test_json_output_follows_the_wire_protocol(serve):
    raw, content_type = serve({"texts": ["a red circle", "a blue star"]})
    doc = json.loads(raw)
    assert content_type == "application/json"
    assert set(doc) == {"model", "dimension", "embeddings", "truncated", "tokens", "logit_scale"}
    assert doc["model"] == "tiny-shapes" and doc["dimension"] == 64
    assert np.asarray(doc["embeddings"]).shape == (2, 64)
    assert doc["truncated"] == [False, False] and doc["tokens"] == [5, 5]


def test_base64_encoding_is_the_float_matrix_little_endian(serve):
    floats = json.loads(serve({"texts": ["a red circle", "a star"]})[0])
    packed = json.loads(serve({"texts": ["a red circle", "a star"], "encoding": "base64"})[0])
    assert isinstance(packed["embeddings"], str)
    decoded = np.asarray(decode_matrix(packed["embeddings"], packed["dimension"]), dtype=np.float32)
    np.testing.assert_array_equal(decoded, np.asarray(floats["embeddings"], dtype=np.float32))


def test_npy_output_is_the_bare_float32_matrix(serve):
    raw, content_type = serve({"texts": ["a red circle", "a star", "x"]}, accept="application/x-npy")
    matrix = np.load(io.BytesIO(raw), allow_pickle=False)
    floats = json.loads(serve({"texts": ["a red circle", "a star", "x"]})[0])["embeddings"]
    assert content_type == "application/x-npy" and matrix.dtype == np.float32 and matrix.shape == (3, 64)
    np.testing.assert_array_equal(matrix, np.asarray(floats, dtype=np.float32))


@pytest.mark.parametrize("accept", ["*/*", "", "application/json, text/plain", "application/x-npy;q=1, */*"])
def test_accept_variants(serve, accept):
    expected = "application/x-npy" if "npy" in accept else "application/json"
    assert serve({"texts": ["a"]}, accept=accept)[1] == expected


def test_unsupported_accept_is_refused(serve, inference):
    with pytest.raises(inference.InputError, match="unsupported Accept 'text/csv'"):
        serve({"texts": ["a"]}, accept="text/csv")


def test_image_output_has_no_token_facts(serve):
    doc = json.loads(serve(image_bytes(), "image/png")[0])
    assert doc["truncated"] is None and doc["tokens"] is None and len(doc["embeddings"]) == 1


def test_json_already_parsed_by_the_model_server_is_accepted(inference):
    req = inference.input_fn({"texts": ["a red circle"], "normalize": False}, "application/json")
    assert (req.kind, req.items, req.normalize) == ("texts", ["a red circle"], False)
