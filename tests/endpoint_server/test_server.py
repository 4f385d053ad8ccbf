"""The serving container over real HTTP (uvicorn on an ephemeral port), with the archive's own inference.py."""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest

from model_code.tiny_shapes.shapes import render
from tests.endpoint_server.conftest import GatedInference
from tests.helpers.ping import wait_healthy
from tests.local_server.serving import png_bytes

Start = Callable[..., tuple[str, Any]]


def _queued(client: httpx.Client, count: int) -> None:
    """Wait until ``count`` invocations wait in the batcher's queue (``/ping`` reports it)."""
    deadline = time.monotonic() + 30
    while client.get("/ping").json().get("queued") != count:
        assert time.monotonic() < deadline, client.get("/ping").text
        time.sleep(0.005)


def _want(inference: ModuleType, model: Any, kind: str, items: list[Any], normalize: bool = True) -> Any:
    return inference.predict_fn(inference.Request(kind, items, normalize), model)


def _vectors(response: httpx.Response, dimension: int) -> np.ndarray:
    if response.headers["content-type"] == "application/x-npy":
        return np.load(io.BytesIO(response.content), allow_pickle=False)
    body = response.json()
    if isinstance(body["embeddings"], str):
        raw = base64.b64decode(body["embeddings"])
        return np.frombuffer(raw, dtype="<f4").reshape(-1, dimension)
    return np.asarray(body["embeddings"], dtype=np.float32)


def test_ping_answers_503_while_the_model_loads_then_200(start: Start, gated: GatedInference, model: Any) -> None:
    loading = threading.Event()
    url, _ = start(loader=lambda: (loading.wait(30), (gated, model))[1])
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(1) as pool:
        early = client.get("/ping")
        assert early.status_code == 503 and early.json()["code"] == "model_loading"
        waiting = pool.submit(client.post, "/invocations", json={"texts": ["sent while loading"]})
        loading.set()
        assert wait_healthy(client).json()["status"] == "Healthy"  # the early invocation may still be queued
        assert waiting.result(60).status_code == 200  # invocations wait for the load instead of failing


def test_a_model_that_fails_to_load_is_reported(start: Start) -> None:
    def broken() -> Any:
        raise FileNotFoundError("no weights in /opt/ml/model")

    url, _ = start(loader=broken)
    with httpx.Client(base_url=url, timeout=60) as client:
        deadline = time.monotonic() + 30
        while (ping := client.get("/ping")).json()["code"] == "model_loading":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert ping.status_code == 503 and "no weights" in ping.json()["message"]
        answer = client.post("/invocations", json={"texts": ["a"]})
        assert answer.status_code == 503 and answer.json()["code"] == "model_not_loaded"


def test_concurrent_clients_meet_in_one_call_and_each_gets_its_own_format(
    start: Start, gated: GatedInference, inference: ModuleType, model: Any
) -> None:
    png = png_bytes(render("red", "circle", "large", random.Random(1)))
    png2 = png_bytes(render("blue", "star", "small", random.Random(2)))
    b64 = base64.b64encode(png2).decode()
    cases: list[tuple[dict[str, Any], str, list[Any], bool]] = [
        ({"json": {"texts": ["a red circle", "x " * 90]}}, "application/json", ["a red circle", "x " * 90], True),
        ({"json": {"texts": ["a blue star"], "encoding": "base64"}}, "application/json", ["a blue star"], True),
        ({"json": {"texts": ["a green square"]}, "headers": {"accept": "application/x-npy"}}, "npy",
         ["a green square"], True),
        ({"content": b"plain words", "headers": {"content-type": "text/plain"}}, "application/json", ["plain words"],
         True),
        ({"json": {"texts": ["not normalised"], "normalize": False}}, "application/json", ["not normalised"], False),
        ({"json": {"images": [base64.b64encode(png).decode()]}, "headers": {"accept": "application/x-npy"}}, "npy",
         [png], True),
        ({"json": {"images": [b64, b64], "encoding": "base64"}}, "application/json", [png2, png2], True),
    ]  # fmt: skip
    url, server = start(max_wait_ms=20)
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(len(cases) + 1) as pool:
        wait_healthy(client)
        gated.hold_next_call()
        first = pool.submit(client.post, "/invocations", json={"texts": ["first"]})
        assert gated.entered.wait(30)
        futures = [pool.submit(client.post, "/invocations", **kwargs) for kwargs, *_ in cases]
        _queued(client, len(cases))
        assert client.get("/ping").status_code == 200  # the loop answers while the model is busy
        gated.release.set()
        assert first.result(60).status_code == 200
        for future, (_, answer_type, items, normalize) in zip(futures, cases, strict=True):
            response = future.result(60)
            assert response.status_code == 200, response.text
            kind = "images" if isinstance(items[0], bytes) else "texts"
            want = _want(inference, model, kind, items, normalize)
            expected_type = "application/x-npy" if answer_type == "npy" else "application/json"
            assert response.headers["content-type"] == expected_type
            assert np.allclose(_vectors(response, want.vectors.shape[1]), want.vectors, atol=1e-5)
            if expected_type == "application/json":
                body = response.json()
                assert body["model"] == "tiny-shapes" and body["truncated"] == want.truncated
                assert body["tokens"] == want.tokens
    # the held call, then one call per (kind, normalize): texts, unnormalised texts, images
    assert sorted(gated.calls[1:]) == [("images", 3, True), ("texts", 1, False), ("texts", 5, True)]
    assert server.batcher.stats.merged_calls == 2


def test_a_bad_request_fails_alone_among_good_ones(
    start: Start, gated: GatedInference, inference: ModuleType, model: Any
) -> None:
    png = png_bytes(render("green", "square", "large", random.Random(3)))
    cases = [
        ({"json": {"texts": ["good one"]}}, 200, None),
        ({"content": b"not an image", "headers": {"content-type": "image/png"}}, 422, "invalid_image"),
        ({"json": {"texts": [GatedInference.POISON]}}, 500, "model_error"),
        ({"json": {"texts": ["wants xml"]}, "headers": {"accept": "application/xml"}}, 406, "not_acceptable"),
        ({"json": {"images": ["@@@"]}}, 400, "invalid_base64"),
        ({"content": b"{}", "headers": {"content-type": "application/xml"}}, 415, "unsupported_media_type"),
        ({"content": png, "headers": {"content-type": "image/png"}}, 200, None),
        ({"json": {"texts": ["good two"]}}, 200, None),
    ]
    url, server = start(max_wait_ms=20)
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(len(cases) + 1) as pool:
        wait_healthy(client)
        gated.hold_next_call()
        pool.submit(client.post, "/invocations", json={"texts": ["first"]})
        assert gated.entered.wait(30)
        futures = [pool.submit(client.post, "/invocations", **kwargs) for kwargs, _, _ in cases]
        _queued(client, 5)  # the three refused before batching never queue
        gated.release.set()
        for future, (kwargs, status, code) in zip(futures, cases, strict=True):
            response = future.result(60)
            assert response.status_code == status, (kwargs, response.text)
            if code:
                assert response.headers["content-type"] == "application/json"
                assert response.json()["code"] == code and response.json()["message"]
        good = json.loads(futures[0].result().content)["embeddings"]
        assert np.allclose(good, _want(inference, model, "texts", ["good one"]).vectors, atol=1e-5)
    assert server.batcher.stats.isolated_retries == 4  # the failed merged text call, retried item by item


def test_a_full_queue_answers_503_overloaded(start: Start, gated: GatedInference) -> None:
    url, _ = start(max_queue=2, max_wait_ms=20)
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(4) as pool:
        wait_healthy(client)
        gated.hold_next_call()
        first = pool.submit(client.post, "/invocations", json={"texts": ["first"]})
        assert gated.entered.wait(30)
        queued = [pool.submit(client.post, "/invocations", json={"texts": [f"q{i}"]}) for i in range(2)]
        _queued(client, 2)
        refused = client.post("/invocations", json={"texts": ["one too many"]})
        assert refused.status_code == 503 and refused.json()["code"] == "overloaded"
        assert refused.headers["retry-after"] == "1"
        gated.release.set()
        assert [f.result(60).status_code for f in [first, *queued]] == [200, 200, 200]
        assert client.post("/invocations", json={"texts": ["room again"]}).status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(start: Start) -> None:
    url, _ = start(max_body_bytes=1000)
    with httpx.Client(base_url=url, timeout=60) as client:
        wait_healthy(client)
        answer = client.post("/invocations", json={"texts": ["x" * 2000]})
        assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/ping", "/invocations"])
def test_wrong_methods_are_refused(start: Start, path: str) -> None:
    url, _ = start()
    with httpx.Client(base_url=url, timeout=60) as client:
        method = "POST" if path == "/ping" else "GET"
        assert client.request(method, path).status_code == 405


def test_a_raw_image_record_is_never_merged_with_json_requests(start: Start, gated: GatedInference) -> None:
    png = png_bytes(render("red", "circle", "large", random.Random(1)))
    url, _ = start(max_wait_ms=20)
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(3) as pool:
        wait_healthy(client)
        gated.hold_next_call()
        first = pool.submit(client.post, "/invocations", json={"texts": ["first"]})
        assert gated.entered.wait(30)
        raw = pool.submit(client.post, "/invocations", content=png, headers={"content-type": "image/png"})
        encoded = pool.submit(client.post, "/invocations", json={"images": [base64.b64encode(png).decode()]})
        _queued(client, 2)
        gated.release.set()
        answers = [f.result(60) for f in (first, raw, encoded)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert np.allclose(answers[1].json()["embeddings"], answers[2].json()["embeddings"], atol=1e-6)
    assert sorted(gated.calls[1:]) == [("images", 1, True), ("images", 1, True)]
