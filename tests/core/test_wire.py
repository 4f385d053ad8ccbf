"""The wire protocol to the model container: exact request bodies, 6 MB chunking, response checks."""

from __future__ import annotations

import base64
import json
import random

import pytest

from omnisearch_embed.backends import wire
from omnisearch_embed.embeddings import Embeddings, encode_matrix
from omnisearch_embed.errors import ModelError, PayloadTooLargeError, UnprocessableError
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

MiB = 1024 * 1024


def _compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _covered(chunks: list[wire.Chunk], field: str) -> list:
    items = []
    for expected_start, chunk in zip([0, *[c.start + c.count for c in chunks]], chunks, strict=False):
        assert chunk.start == expected_start  # contiguous, in order
        doc = json.loads(chunk.body)
        assert len(doc[field]) == chunk.count
        items.extend(doc[field])
    return items


# --- requests ---------------------------------------------------------------------------------------


def test_text_request_body_is_the_compact_json_the_container_parses() -> None:
    texts = ["a red circle", 'quote " and \\ backslash', "café ☕ 猫"]
    (chunk,) = wire.text_chunks(texts, normalize=False, encoding="float")
    assert chunk.body == _compact({"texts": texts, "normalize": False, "encoding": "float"})
    assert (chunk.start, chunk.count) == (0, 3)
    assert json.loads(chunk.body)["texts"] == texts


def test_image_request_body_carries_base64_of_the_exact_bytes() -> None:
    images = [b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b"GIF89a"]
    (chunk,) = wire.image_chunks(images)
    doc = json.loads(chunk.body)
    assert doc == {"images": [base64.b64encode(i).decode() for i in images], "normalize": True, "encoding": "base64"}
    assert [base64.b64decode(i) for i in doc["images"]] == images


def test_text_that_is_not_valid_unicode_still_encodes() -> None:
    # json.loads accepts "\ud800" (a lone surrogate); encoding it as UTF-8 would crash, \u escapes do not
    texts = [json.loads('"broken \\ud800 surrogate"'), "ok"]
    (chunk,) = wire.text_chunks(texts)
    assert json.loads(chunk.body)["texts"] == texts


def test_empty_batch_has_no_chunks() -> None:
    assert wire.text_chunks([]) == []


# --- chunking ---------------------------------------------------------------------------------------


def test_batch_over_the_limit_splits_into_tight_chunks_in_order() -> None:
    rng = random.Random(7)
    texts = [f"text {i} " + "x" * rng.randrange(0, 300) for i in range(200)]
    max_bytes = 2048
    chunks = wire.text_chunks(texts, max_bytes=max_bytes)
    assert len(chunks) > 10
    assert _covered(chunks, "texts") == texts
    for chunk in chunks:
        assert len(chunk.body) <= max_bytes
        assert chunk.body == _compact(
            {"texts": texts[chunk.start : chunk.start + chunk.count], "normalize": True, "encoding": "base64"}
        )
    for chunk in chunks[:-1]:  # greedy: the next item would not have fitted
        grown = texts[chunk.start : chunk.start + chunk.count + 1]
        assert len(_compact({"texts": grown, "normalize": True, "encoding": "base64"})) > max_bytes


def test_an_item_that_exactly_fills_an_invocation_is_accepted() -> None:
    overhead = len(_compact({"texts": [], "normalize": True, "encoding": "base64"}))
    exact = "y" * (1024 - overhead - 2)  # two quotes around it
    chunks = wire.text_chunks(["a", exact, "b"], max_bytes=1024)
    assert [(c.start, c.count) for c in chunks] == [(0, 1), (1, 1), (2, 1)]
    assert len(chunks[1].body) == 1024


def test_items_that_exactly_fill_an_invocation_share_it() -> None:
    overhead = len(_compact({"texts": [], "normalize": True, "encoding": "base64"}))
    first = "p" * 100
    second = "q" * (1024 - overhead - (100 + 2) - 1 - 2)  # a comma between them, quotes around each
    chunks = wire.text_chunks([first, second, "r"], max_bytes=1024)
    assert [(c.start, c.count) for c in chunks] == [(0, 2), (2, 1)]
    assert len(chunks[0].body) == 1024


def test_a_single_item_over_the_limit_is_a_413_naming_it() -> None:
    overhead = len(_compact({"texts": [], "normalize": True, "encoding": "base64"}))
    with pytest.raises(PayloadTooLargeError) as info:
        wire.text_chunks(["a", "z" * (1024 - overhead - 1)], max_bytes=1024)
    assert info.value.status == 413
    assert info.value.code == "item_exceeds_invoke_limit"
    assert info.value.param == "texts[1]"
    assert "1,024 bytes" in info.value.message


def test_base64_growth_counts_against_the_real_6_mb_limit() -> None:
    # 4.4 MiB of image is ~5.9 MiB as base64: fits one invocation; 4.6 MiB (~6.1 MiB as base64) cannot
    (chunk,) = wire.image_chunks([bytes(int(4.4 * MiB))])
    assert len(chunk.body) <= SAGEMAKER_MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLargeError) as info:
        wire.image_chunks([b"ok", bytes(int(4.6 * MiB))])
    assert info.value.param == "images[1]"


def test_real_size_image_batch_splits_under_6_mb_and_reassembles() -> None:
    rng = random.Random(3)
    images = [rng.randbytes(rng.randrange(200_000, 900_000)) for _ in range(30)]  # ~16 MB of images
    chunks = wire.image_chunks(images)
    raw_total = sum(len(i) for i in images)
    assert len(chunks) >= (raw_total * 4 / 3) // SAGEMAKER_MAX_PAYLOAD_BYTES + 1
    assert all(len(c.body) <= SAGEMAKER_MAX_PAYLOAD_BYTES for c in chunks)
    assert [base64.b64decode(i) for i in _covered(chunks, "images")] == images


# --- responses --------------------------------------------------------------------------------------


def _response(**overrides: object) -> bytes:
    doc = {
        "model": "tiny-shapes",
        "dimension": 2,
        "embeddings": encode_matrix([[0.5, -1.0], [0.25, 2.0]]),
        "truncated": [False, True],
        "tokens": [4, 77],
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


def test_base64_response_decodes_to_the_float32_matrix() -> None:
    result = wire.decode_response(_response(), count=2, service="sagemaker", texts=True)
    assert result == Embeddings(
        [[0.5, -1.0], [0.25, 2.0]], "tiny-shapes", "sagemaker", 2, truncated=[False, True], tokens=[4, 77]
    )


def test_float_response_decodes_too() -> None:
    body = _response(embeddings=[[0.5, -1], [0.25, 2.0]])
    assert wire.decode_response(body, count=2, service="local", texts=True).vectors == [[0.5, -1.0], [0.25, 2.0]]


def test_image_responses_drop_text_only_fields() -> None:
    result = wire.decode_response(_response(truncated=None, tokens=[]), count=2, service="sagemaker", texts=False)
    assert (result.truncated, result.tokens) == (None, None)


@pytest.mark.parametrize(
    ("body", "count", "detail"),
    [
        (b"<html>502 Bad Gateway</html>", 2, "not JSON"),
        (b"\xff\xfe", 2, "not JSON"),
        (b"[1, 2]", 2, "not a JSON object"),
        (_response(model=""), 2, "no model id"),
        (_response(dimension=0), 2, "dimension"),
        (_response(dimension=True), 2, "dimension"),
        (_response(dimension=3), 2, "do not decode"),
        (_response(embeddings="not base64!"), 2, "do not decode"),
        (_response(embeddings={"a": 1}), 2, "neither"),
        (_response(embeddings=[[0.5, "x"], [1, 2]]), 2, "non-number"),
        (_response(embeddings=[[0.5], [1, 2]]), 2, "list of 2 numbers"),
        (_response(), 3, "2 embeddings for 3 inputs"),
        (_response(truncated=[False]), 2, "truncated"),
        (_response(truncated=[0, 1]), 2, "truncated"),
        (_response(tokens=[True, 2]), 2, "tokens"),
    ],
)
def test_a_response_that_breaks_the_protocol_is_a_502(body: bytes, count: int, detail: str) -> None:
    with pytest.raises(ModelError) as info:
        wire.decode_response(body, count=count, service="sagemaker", texts=True)
    assert (info.value.status, info.value.code) == (502, "bad_model_response")
    assert detail in info.value.message


# --- reassembly -------------------------------------------------------------------------------------


def test_merge_keeps_order_and_per_item_fields() -> None:
    parts = [
        Embeddings([[1.0], [2.0]], "m", "sagemaker", 1, truncated=[False, True], tokens=[3, 77]),
        Embeddings([[3.0]], "m", "sagemaker", 1, truncated=[False], tokens=[5]),
    ]
    merged = wire.merge(parts)
    assert merged.vectors == [[1.0], [2.0], [3.0]]
    assert (merged.truncated, merged.tokens) == ([False, True, False], [3, 77, 5])


def test_merge_refuses_two_models_in_one_batch() -> None:
    parts = [Embeddings([[1.0]], "ViT-B-32/openai", "sagemaker", 1), Embeddings([[1.0]], "ViT-L-14", "sagemaker", 1)]
    with pytest.raises(ModelError) as info:
        wire.merge(parts)
    assert info.value.code == "model_mismatch"


def _doc(**extra: object) -> bytes:
    return json.dumps({"model": "m", "dimension": 2, "embeddings": [[0.6, 0.8]], **extra}).encode()


def test_the_containers_logit_scale_is_carried_and_an_older_container_gives_none() -> None:
    assert wire.decode_response(_doc(logit_scale=100.0), count=1, service="s", texts=False).logit_scale == 100.0
    assert wire.decode_response(_doc(logit_scale=18), count=1, service="s", texts=True).logit_scale == 18.0
    assert wire.decode_response(_doc(), count=1, service="s", texts=False).logit_scale is None


@pytest.mark.parametrize("bad", [0, -1.0, "100", True, float("inf")])
def test_a_logit_scale_that_is_not_a_positive_number_is_a_bad_model_response(bad: object) -> None:
    with pytest.raises(ModelError) as info:
        wire.decode_response(_doc(logit_scale=bad), count=1, service="s", texts=False)
    assert info.value.code == "bad_model_response"


def test_locate_item_shifts_the_models_index_by_the_chunk_offset() -> None:
    error = wire.locate_item(UnprocessableError("images[1] is not a readable image", code="invalid_image"), 30)
    assert (error.index, error.message) == (31, "images[31] is not a readable image")
    server_side = wire.locate_item(ModelError("images[1] broke the model"), 30)
    assert server_side.index is None  # only the caller's mistakes are about one item
