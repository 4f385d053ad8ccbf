"""Weaviate's multi2vec-clip client against the local server: readiness, /meta, /vectorize, batching, vectors."""

from __future__ import annotations

import base64
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from model_code.tiny_shapes.shapes import CLASSES
from omnisearch_testkit.images import image_bytes
from tests.helpers.waiting import wait_for
from tests.local_server.serving import GatedBackend, MainServer, Running
from tests.local_server.weaviate_client import READY_TIMEOUT_S, check_ready, go_marshal, go_post, go_vectorize

CAPTIONS = [f"a {colour} {shape}" for colour, shape in CLASSES]
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 220, 40), (240, 240, 240), (20, 20, 20)]
IMAGES = [base64.b64encode(image_bytes("PNG", (32, 32), colour)).decode() for colour in COLOURS]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _wait_ready(url: str, polls: int = 100) -> None:
    """Poll as Weaviate does until 204; every poll must answer inside Weaviate's 500 ms."""
    with httpx.Client(base_url=url) as client:
        for _ in range(polls):
            if check_ready(client).status_code == 204:
                return
        raise AssertionError(f"not ready after {polls} polls")


def _batch(url: str, kind: str, items: list[str]) -> list[list[float]]:
    key = "texts" if kind == "text" else "images"
    response = httpx.post(f"{url}/embed/batch/{kind}", json={key: items}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["embeddings"]


@pytest.fixture(scope="module")
def ready_server(server: MainServer) -> MainServer:
    _wait_ready(server.url)
    return server


def test_live_and_ready_answer_204_with_no_body_and_polls_make_no_model_call(ready_server: MainServer) -> None:
    calls_before = len(ready_server.gated.calls)
    with httpx.Client(base_url=ready_server.url) as client:
        for _ in range(20):
            for response in (client.get("/.well-known/live", timeout=READY_TIMEOUT_S), check_ready(client)):
                assert response.status_code == 204 and response.content == b""
    assert len(ready_server.gated.calls) == calls_before  # readiness is cached: no poll reaches the model


def test_meta_describes_the_model(ready_server: MainServer, tiny: Any) -> None:
    meta = httpx.get(f"{ready_server.url}/meta", timeout=5).json()
    assert meta["model"] == meta["model_name"] == "tiny-shapes"
    assert meta["dimension"] == tiny.dimension and meta["normalized"] is True and meta["ready"] is True
    assert meta["service"] == "local" and meta["limits"]["max_batch_items"] == 256


@pytest.mark.parametrize(
    "texts,images,omitempty",
    [
        (CAPTIONS[:3], None, True),  # nearText, or an object with text properties only
        (None, IMAGES[:2], True),  # nearImage, or an object with blob properties only
        (CAPTIONS[3:5], IMAGES[2:5], True),  # an object with both
        (["a red circle & a <blue> square"], [], False),  # Weaviate before 1.25: both keys, HTML escapes
    ],
)
def test_vectorize_answers_weaviates_requests_with_the_batch_routes_vectors(
    ready_server: MainServer, texts: list[str] | None, images: list[str] | None, omitempty: bool
) -> None:
    body = go_marshal(texts, images, omitempty=omitempty)
    answer = go_post(ready_server.url, body, content_type="application/json" if omitempty else None)
    assert answer.status == 200 and not answer.error
    assert answer.headers["content-type"] == "application/json"
    for kind, sent, got in (("text", texts, answer.text_vectors), ("image", images, answer.image_vectors)):
        assert len(got) == len(sent or [])
        if not sent:
            continue
        want = _batch(ready_server.url, kind, sent)
        for row, expected in zip(got, want, strict=True):
            assert _cos(row, expected) >= 0.9999
            assert abs(math.sqrt(sum(x * x for x in row)) - 1.0) < 1e-4  # L2-normalised, as the reference is


def test_vectors_keep_input_order_and_do_not_mix_up(ready_server: MainServer) -> None:
    answer = go_vectorize(ready_server.url, CAPTIONS[:8], IMAGES)
    singles = [go_vectorize(ready_server.url, [t]).text_vectors[0] for t in CAPTIONS[:8]]
    for i, row in enumerate(answer.text_vectors):
        assert _cos(row, singles[i]) >= 0.9999
        assert all(_cos(row, other) < 0.999 for j, other in enumerate(singles) if j != i)


def _pile_up(server: MainServer, bodies: list[bytes], held: bytes | None = None) -> tuple[list[Any], list[int]]:
    """Hold the model on one request (``held``: of the same kind as ``bodies``, so that it blocks their batcher
    lane), send ``bodies`` as Weaviate's import workers do, release, collect."""
    gated: GatedBackend = server.gated
    before_calls, before_requests = len(gated.calls), server.batcher.stats.requests
    gated.hold_next_call()
    with ThreadPoolExecutor(max_workers=len(bodies) + 1) as pool:
        first = pool.submit(go_post, server.url, held or go_marshal(["the held one"], None))
        assert gated.entered.wait(30)
        futures = [pool.submit(go_post, server.url, body) for body in bodies]
        wait_for(lambda: server.batcher.stats.requests == before_requests + len(bodies) + 1)
        gated.release.set()
        assert first.result(60).status == 200
        answers = [f.result(60) for f in futures]
    return answers, gated.calls[before_calls:]


def test_concurrent_one_object_requests_meet_in_one_model_call(ready_server: MainServer) -> None:
    # Weaviate's batch import: one /vectorize per object, 2 x its CPU count at once (16 on an 8-core host)
    texts = CAPTIONS[:16]
    answers, calls = _pile_up(ready_server, [go_marshal([t], None) for t in texts])
    assert calls == [1, 16], calls  # the held call, then all sixteen objects in one
    want = _batch(ready_server.url, "text", texts)
    for answer, expected in zip(answers, want, strict=True):
        assert answer.status == 200 and len(answer.text_vectors) == 1 and not answer.image_vectors
        assert _cos(answer.text_vectors[0], expected) >= 0.9999


def test_concurrent_image_objects_meet_in_one_model_call(ready_server: MainServer) -> None:
    held = go_marshal(None, [IMAGES[0]])
    answers, calls = _pile_up(ready_server, [go_marshal(None, [image]) for image in IMAGES], held)
    assert calls == [1, len(IMAGES)], calls
    want = _batch(ready_server.url, "image", IMAGES)
    for answer, expected in zip(answers, want, strict=True):
        assert answer.status == 200 and len(answer.image_vectors) == 1
        assert _cos(answer.image_vectors[0], expected) >= 0.9999


def test_a_bad_object_fails_alone_with_an_error_weaviate_reads(ready_server: MainServer) -> None:
    bodies = [go_marshal([t], None) for t in ("a red circle", GatedBackend.POISON, "a blue square")]
    answers, _ = _pile_up(ready_server, bodies)
    assert [a.status for a in answers] == [200, 502, 200]
    assert "choked" in answers[1].error and answers[1].code == "model_error"


def test_sagemaker_mode_serves_weaviate_through_the_endpoint(cloud_server: Running, ready_server: MainServer) -> None:
    _wait_ready(cloud_server.url)
    meta = httpx.get(f"{cloud_server.url}/meta", timeout=5).json()
    assert meta["service"] == "sagemaker" and meta["ready"] is True and meta["dimension"] > 0
    answer = go_vectorize(cloud_server.url, CAPTIONS[:2], IMAGES[:2])
    assert answer.status == 200
    want = _batch(ready_server.url, "text", CAPTIONS[:2]) + _batch(ready_server.url, "image", IMAGES[:2])
    for got, expected in zip(answer.text_vectors + answer.image_vectors, want, strict=True):
        assert _cos(got, expected) >= 0.9999
