"""``POST /classify`` through ``lambda_handler``: JSON, multipart and raw bodies, on tiny-shapes and on errors.

The README's example runs here on the real tiny-shapes model: a red circle drawn by the shapes renderer,
uploaded, ranks "red circle" first among shape and colour names.
"""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from model_code.tiny_shapes.shapes import COLOURS, SHAPES, render
from omnisearch_testkit.events import MULTIPART_TYPE, load_event, multipart_body
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import invoke, use_backend


def shape_png(colour: str, shape: str, seed: int = 1) -> bytes:
    out = io.BytesIO()
    render(colour, shape, "large", random.Random(seed)).save(out, "PNG")
    return out.getvalue()


RED_CIRCLE = shape_png("red", "circle")
NAMES = [f"{colour} {shape}" for colour in ("red", "blue", "green") for shape in SHAPES]


@pytest.fixture(scope="module")
def tiny_backend() -> Iterator[Any]:
    from local_server.clip_backend import LocalClipBackend

    yield LocalClipBackend("tiny-shapes")


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tiny_backend: Any) -> Any:
    use_backend(monkeypatch, tiny_backend)
    return tiny_backend


def test_the_readme_example_an_uploaded_red_circle_ranks_red_circle_first(tiny: Any) -> None:
    event = load_event(
        "classify_multipart",
        body=multipart_body({"file": ("red-circle.png", RED_CIRCLE, "image/png")}, {"labels": json.dumps(NAMES)}),
    )
    status, body = invoke(event)
    assert status == 200, body
    ranked = body["results"][0]["labels"]
    assert ranked[0]["label"] == "red circle" and ranked[0]["probability"] > 0.5
    assert [r["probability"] for r in ranked] == sorted((r["probability"] for r in ranked), reverse=True)
    assert sum(r["probability"] for r in ranked) == pytest.approx(1.0)
    assert body["logit_scale"] == pytest.approx(tiny.container()[1].logit_scale)
    assert (body["model"], body["service"], body["template"], body["truncated_labels"]) == (
        "tiny-shapes", "local", "a photo of {}", [])  # fmt: skip


@pytest.mark.parametrize(("colour", "shape"), [("blue", "square"), ("green", "triangle"), ("yellow", "star")])
def test_each_input_of_a_batch_gets_its_own_ranking_in_order(tiny: Any, colour: str, shape: str) -> None:
    images = [base64.b64encode(shape_png(colour, shape, 3)).decode(), base64.b64encode(RED_CIRCLE).decode()]
    labels = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    event = load_event("classify", body={"images": images, "labels": labels, "template": "a {}", "top_k": 3})
    status, body = invoke(event)
    assert status == 200, body
    assert [len(r["labels"]) for r in body["results"]] == [3, 3]
    assert [r["labels"][0]["label"] for r in body["results"]] == [f"{colour} {shape}", "red circle"]


def test_shape_and_colour_words_on_their_own(tiny: Any) -> None:
    status, body = invoke(load_event("classify"))  # the sample red circle against shape and colour words
    assert status == 200, body
    top = [r["label"] for r in body["results"][0]["labels"][:2]]
    assert set(top) == {"red", "circle"}


def test_texts_are_routed_to_labels_the_same_way(tiny: Any) -> None:
    labels = ["red circle", "blue square", "green triangle"]
    body = {"texts": ["a small blue square", "a green triangle on white"], "labels": labels, "template": "{}"}
    status, answer = invoke(load_event("classify", body=body))
    assert status == 200, answer
    assert [r["labels"][0]["label"] for r in answer["results"]] == ["blue square", "green triangle"]


def test_a_raw_image_body_takes_repeated_labels_from_the_query(tiny: Any) -> None:
    event = load_event("embed_image_raw_png", path="/classify", body=RED_CIRCLE, headers={"Content-Type": "image/png"})
    event["multiValueQueryStringParameters"] = {"labels": ["red circle", "blue star"], "top_k": ["1"]}
    event["queryStringParameters"] = {"labels": "blue star", "top_k": "1"}
    status, body = invoke(event)
    assert status == 200, body
    assert [r["label"] for r in body["results"][0]["labels"]] == ["red circle"]


LONG = " ".join(["circle"] * 90)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"image": "x", "labels": []}, 400, "too_few_labels"),
        ({"image": "x", "labels": ["circle"]}, 400, "too_few_labels"),
        ({"image": "x", "labels": [f"l{i}" for i in range(1001)]}, 413, "too_many_labels"),
        ({"image": "x", "labels": ["a", "b"], "template": "a photo of"}, 400, "invalid_template"),
        ({"image": "x", "labels": ["a", "b"], "top_k": 3}, 400, "invalid_top_k"),
        ({"image": "x", "labels": ["a", "a"]}, 400, "duplicate_label"),
        ({"labels": ["a", "b"]}, 422, "validation_error"),
        ({"image": "x", "text": "y", "labels": ["a", "b"]}, 422, "validation_error"),
        ({"images": ["x"], "labels": ["a", "b"]}, 400, "invalid_base64"),
    ],
)
def test_bad_requests_get_stable_codes(
    monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], status: int, code: str
) -> None:
    backend = StaticBackend(logit_scale=50.0)
    use_backend(monkeypatch, backend)
    got, answer = invoke(load_event("classify", body=body))
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert backend.calls == []  # refused before any model call


NEW_LABELS = [f"label {i}" for i in range(1000)]  # four text calls, were they embedded
CORRUPT_PNG = RED_CIRCLE[: len(RED_CIRCLE) // 2]


def corrupt_upload() -> dict[str, Any]:
    body = multipart_body({"file": ("c.png", CORRUPT_PNG, "image/png")}, {"labels": json.dumps(NEW_LABELS)})
    return load_event("classify_multipart", body=body, headers={"Content-Type": MULTIPART_TYPE})


def corrupt_raw_body() -> dict[str, Any]:
    event = load_event("embed_image_raw_png", path="/classify", body=CORRUPT_PNG, headers={"Content-Type": "image/png"})
    event["multiValueQueryStringParameters"] = {"labels": NEW_LABELS[:300]}
    return event


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (corrupt_upload, 422, "corrupt_image"),
        (corrupt_raw_body, 422, "corrupt_image"),
        (lambda: load_event("classify", body={"text": " ", "labels": NEW_LABELS}), 400, "empty_text"),
        (lambda: load_event("classify", body={"texts": ["a", "b" * 10_001], "labels": NEW_LABELS}), 413,
         "text_too_long"),
        (lambda: load_event("classify", body={"images": ["x"] * 257, "labels": NEW_LABELS}), 413, "too_many_items"),
        (lambda: load_event("classify", body={"image": "https://example.com/a.png", "labels": NEW_LABELS}), 400,
         "url_not_supported"),
    ],
    ids=["corrupt upload", "corrupt raw body", "empty text", "long text", "too many images", "url"],
)  # fmt: skip
def test_a_bad_input_is_refused_before_any_label_is_embedded(
    monkeypatch: pytest.MonkeyPatch, event: Any, status: int, code: str
) -> None:
    backend = StaticBackend(logit_scale=50.0)
    use_backend(monkeypatch, backend)
    got, answer = invoke(event())
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert backend.calls == []  # no label was embedded, and none cached


def test_a_label_past_77_tokens_is_flagged_not_refused(tiny: Any) -> None:
    status, body = invoke(load_event("classify", body={"text": "a red circle", "labels": ["red circle", LONG]}))
    assert status == 200, body
    assert body["truncated_labels"] == [LONG]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "too_few_labels"),
        ({"labels": "circle, square"}, "invalid_option"),
        ({"labels": '["a", "b"]', "top_k": "two"}, "invalid_option"),
        ({"labels": '["a", "b"]', "colour": "red"}, "invalid_option"),
    ],
)
def test_bad_form_fields_get_stable_codes(monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], code: str) -> None:
    use_backend(monkeypatch, StaticBackend(logit_scale=50.0))
    body = multipart_body({"file": ("c.png", RED_CIRCLE, "image/png")}, fields)
    status, answer = invoke(load_event("classify_multipart", body=body, headers={"Content-Type": MULTIPART_TYPE}))
    assert (status, answer["error"]["code"]) == (400, code), answer
