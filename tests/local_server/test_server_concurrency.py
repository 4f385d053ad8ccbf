"""Concurrent clients each get their own answer; concurrent requests meet in one model call; one bad one fails alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from model_code.tiny_shapes.shapes import CLASSES
from tests.helpers.waiting import wait_for
from tests.local_server.serving import GatedBackend, MainServer

# one caption per colour x shape class: 32 inputs the demo model tells apart
CAPTIONS = [f"a {colour} {shape}" for colour, shape in CLASSES]


def test_32_concurrent_clients_each_get_their_own_answer(server: MainServer, tiny: Any) -> None:
    assert len(CAPTIONS) == 32
    expected = dict(zip(CAPTIONS, tiny.embed_texts(CAPTIONS).vectors, strict=True))
    start = threading.Barrier(32)

    def one_client(text: str) -> tuple[str, dict[str, Any]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            start.wait()
            response = client.post("/embed/text", json={"text": text})
            assert response.status_code == 200, response.text
            return text, response.json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one_client, CAPTIONS))
    for text, body in results:
        got, want = body["embedding"], expected[text]
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-4, text
        # every other caption's vector is clearly different, so a mix-up could not pass the check above
        assert all(
            max(abs(a - b) for a, b in zip(got, v, strict=True)) > 1e-3 for t, v in expected.items() if t != text
        )


def _pile_up(server: MainServer, requests: list[dict[str, Any]]) -> tuple[list[httpx.Response], list[int]]:
    """Hold the model on one request, send ``requests`` while it is busy, release, collect the answers."""
    gated: GatedBackend = server.gated
    before_calls, before_requests = len(gated.calls), server.batcher.stats.requests
    gated.hold_next_call()

    def send(payload: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/embed/text", json=payload)

    with ThreadPoolExecutor(max_workers=len(requests) + 1) as pool:
        first = pool.submit(send, {"text": "the held one"})
        assert gated.entered.wait(30)
        futures = [pool.submit(send, payload) for payload in requests]
        wait_for(lambda: server.batcher.stats.requests == before_requests + len(requests) + 1)
        gated.release.set()
        assert first.result(60).status_code == 200
        responses = [f.result(60) for f in futures]
    return responses, gated.calls[before_calls:]


def test_concurrent_requests_are_merged_into_one_model_call(server: MainServer, tiny: Any) -> None:
    texts = CAPTIONS[:16]
    responses, calls = _pile_up(server, [{"text": t} for t in texts])
    assert calls == [1, 16], calls  # the held call, then all sixteen in one
    for text, response, want in zip(texts, responses, tiny.embed_texts(texts).vectors, strict=True):
        assert response.status_code == 200, response.text
        assert max(abs(a - b) for a, b in zip(response.json()["embedding"], want, strict=True)) < 1e-4, text


def test_an_input_the_model_rejects_fails_only_its_own_request(server: MainServer) -> None:
    payloads = [{"text": "a red circle"}, {"text": GatedBackend.POISON}, {"text": "a blue square"}]
    responses, calls = _pile_up(server, payloads)
    assert [r.status_code for r in responses] == [200, 502, 200]
    assert responses[1].json()["error"]["code"] == "model_error"
    assert sorted(calls) == [1, 1, 1, 1, 3], calls  # held, merged (failed), then each request alone
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/embed/text", json={"text": "still here"}).status_code == 200
