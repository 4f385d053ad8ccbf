"""``POST /classify`` over real HTTP: served locally (in-process model) and through the SageMaker emulation.

The local server's backend counts model calls, so the label cache is checked against real forward passes:
a label set seen before costs one image call and no text call, whichever worker thread answers.
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import httpx
import pytest

from model_code.tiny_shapes.shapes import SHAPES, render
from tests.local_server.serving import MainServer, Running


def shape_png(colour: str, shape: str) -> bytes:
    out = io.BytesIO()
    render(colour, shape, "large", random.Random(7)).save(out, "PNG")
    return out.getvalue()


LABELS = [f"{colour} {shape}" for colour in ("red", "blue", "purple") for shape in SHAPES]


def upload(url: str, image: bytes, labels: list[str], **fields: str) -> httpx.Response:
    files = {"file": ("shape.png", image, "image/png")}
    return httpx.post(f"{url}/classify", files=files, data={"labels": json.dumps(labels), **fields}, timeout=60)


def test_a_repeated_label_set_costs_one_image_forward_pass(server: MainServer) -> None:
    labels = [f"{label} drawn once" for label in LABELS]  # labels no other test uses: nothing cached yet
    before = len(server.gated.calls)
    first = upload(server.url, shape_png("purple", "star"), labels, template="a {}")
    assert first.status_code == 200, first.text
    assert first.json()["results"][0]["labels"][0]["label"] == "purple star drawn once"
    after_first = len(server.gated.calls)
    assert after_first - before == 2  # the labels' text call and the image's call
    with httpx.Client(timeout=60) as client:  # other connections, likely other worker threads
        for colour, shape in (("red", "circle"), ("blue", "square"), ("purple", "triangle")):
            files = {"file": ("s.png", shape_png(colour, shape), "image/png")}
            response = client.post(
                f"{server.url}/classify",
                files=files,
                data={"labels": json.dumps(labels), "template": "a {}", "top_k": "1"},
            )
            assert response.status_code == 200, response.text
            assert [r["label"] for r in response.json()["results"][0]["labels"]] == [f"{colour} {shape} drawn once"]
    assert len(server.gated.calls) - after_first == 3
    assert server.gated.calls[-3:] == [1, 1, 1]


@pytest.mark.parametrize("kind", ["local", "sagemaker"])
def test_classify_is_served_with_the_models_logit_scale(request: pytest.FixtureRequest, tiny: Any, kind: str) -> None:
    running: Running = request.getfixturevalue("server" if kind == "local" else "cloud_server")
    response = upload(running.url, shape_png("red", "circle"), LABELS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"][0]["labels"][0]["label"] == "red circle"
    assert body["logit_scale"] == pytest.approx(tiny.container()[1].logit_scale)  # as the engine carries it
    assert body["service"] == ("local" if kind == "local" else "sagemaker")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "a", "labels": ["one"]}, 400, "too_few_labels"),
        ({"text": "a", "labels": [str(i) for i in range(1001)]}, 413, "too_many_labels"),
        ({"text": "a", "labels": ["a", "b"], "template": "no slot"}, 400, "invalid_template"),
    ],
)
def test_bad_label_lists_over_http(server: MainServer, body: dict[str, Any], status: int, code: str) -> None:
    response = httpx.post(f"{server.url}/classify", json=body, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_raw_image_body_with_repeated_label_params(server: MainServer) -> None:
    response = httpx.post(
        f"{server.url}/classify",
        params=[("labels", "blue square"), ("labels", "red circle"), ("labels", "green star"), ("top_k", "2")],
        content=shape_png("red", "circle"),
        headers={"content-type": "image/png"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    ranked = response.json()["results"][0]["labels"]
    assert len(ranked) == 2 and ranked[0]["label"] == "red circle"
