"""Every bad request to /vectorize gets a 4xx whose body Weaviate's Go client can decode: {"error": "<string>"}.

Small limits on a deterministic backend make each limit cheap to cross; the backend must never be reached.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from omnisearch_embed.errors import BackendUnavailableError, ModelError
from omnisearch_embed.settings import Settings
from omnisearch_testkit.images import image_bytes, png_claiming, truncated_png
from tests.helpers.backends import StaticBackend
from tests.local_server.serving import Running, serving
from tests.local_server.weaviate_client import go_decode, go_marshal, go_post

LIMITS = Settings(max_batch_items=4, max_text_chars=40, max_image_bytes=4096, max_request_bytes=8192)
PNG = base64.b64encode(image_bytes()).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[Running, StaticBackend]]:
    backend = StaticBackend(model_id="tiny-shapes")
    with serving(backend, LIMITS) as running:
        yield running, backend


BAD_BODIES: list[tuple[str, bytes, str | None, int, str]] = [
    ("malformed JSON", b'{"texts": ["a red', "application/json", 400, "invalid_json"),
    ("empty body", b"", "application/json", 400, "invalid_json"),
    ("JSON that is not an object", b'["a red circle"]', "application/json", 422, "validation_error"),
    ("texts not a list", b'{"texts": "a red circle"}', "application/json", 422, "validation_error"),
    ("a text that is a number", b'{"texts": [7]}', "application/json", 422, "validation_error"),
    ("an image that is null", b'{"images": [null]}', "application/json", 422, "validation_error"),
    ("wrong content type", go_marshal(["a red circle"], None), "text/plain", 415, "unsupported_media_type"),
    ("form content type", b"texts=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("too many texts", go_marshal(["a red circle"] * 5, None), "application/json", 413, "too_many_items"),
    ("too many images", go_marshal(None, [PNG] * 5), "application/json", 413, "too_many_items"),
    ("a text over the limit", go_marshal(["x" * 41], None), "application/json", 413, "text_too_long"),
    ("an empty text", go_marshal([""], None), "application/json", 400, "empty_text"),
    ("an empty image", go_marshal(None, [PNG, ""]), "application/json", 400, "empty_image"),
    (
        "an image over the limit",
        go_marshal(None, [b64(b"\x89PNG" + bytes(5000))]),
        "application/json",
        413,
        "image_too_large",
    ),
    (
        "images over the request limit",
        go_marshal(None, [b64(bytes(3000))] * 3),
        "application/json",
        413,
        "request_too_large",
    ),
    (
        "a body over the read limit",
        b'{"texts": ["a"], "pad": "' + b"x" * 80_000 + b'"}',
        "application/json",
        413,
        "request_too_large",
    ),
    ("bad base64", go_marshal(None, ["not base64 at all!"]), "application/json", 400, "invalid_base64"),
    ("not an image", go_marshal(None, [b64(b"just some text, not pixels")]), "application/json", 422, "invalid_image"),
    ("a truncated image", go_marshal(None, [b64(truncated_png((16, 16)))]), "application/json", 422, "corrupt_image"),
    (
        "a pixel bomb",
        go_marshal(None, [b64(png_claiming(40000, 40000))]),
        "application/json",
        413,
        "image_too_many_pixels",
    ),
    ("an s3 URI", go_marshal(None, ["s3://bucket/key.png"]), "application/json", 400, "url_not_supported"),
    ("an http URL", go_marshal(None, ["https://example.com/a.png"]), "application/json", 400, "url_not_supported"),
]


@pytest.mark.parametrize(
    "body,content_type,status,code", [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES]
)
def test_bad_input_is_a_4xx_with_an_error_weaviate_can_read(
    limited: tuple[Running, StaticBackend], body: bytes, content_type: str | None, status: int, code: str
) -> None:
    running, backend = limited
    calls = len(backend.calls)
    answer = go_post(running.url, body, content_type=content_type)
    assert (answer.status, answer.code) == (status, code), answer.error
    assert answer.failed and answer.error and answer.headers["content-type"] == "application/json"
    assert not answer.text_vectors and not answer.image_vectors
    assert len(backend.calls) == calls  # refused before the model


def test_a_bad_image_fails_the_whole_object_even_with_good_texts(limited: tuple[Running, StaticBackend]) -> None:
    running, _ = limited
    answer = go_post(running.url, go_marshal(["a red circle"], [PNG, "!!"]))
    assert (answer.status, answer.code) == (400, "invalid_base64") and "images[1]" in answer.error


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_a_weaviate_shaped_405(limited: tuple[Running, StaticBackend], method: str) -> None:
    running, _ = limited
    response = httpx.request(method, f"{running.url}/vectorize", timeout=5)
    answer = go_decode(response.status_code, response.content)
    assert answer.status == 405 and answer.code == "method_not_allowed" and response.headers["allow"] == "POST"
    response = httpx.post(f"{running.url}/meta", timeout=5)
    assert go_decode(response.status_code, response.content).status == 405


def test_the_reference_containers_leniencies_are_kept(limited: tuple[Running, StaticBackend]) -> None:
    running, _ = limited
    # unknown keys ignored, null as an empty list, both keys missing: nothing to embed, nothing refused
    for body in (b'{"texts": ["a"], "config": {"x": 1}}', b'{"texts": null, "images": ["' + PNG.encode() + b'"]}'):
        assert go_post(running.url, body).status == 200
    nothing = go_post(running.url, b"{}")
    assert nothing.status == 200 and nothing.text_vectors == [] and nothing.image_vectors == []
    data_uri = go_post(running.url, go_marshal(None, ["data:image/png;base64," + PNG]))
    assert data_uri.status == 200 and len(data_uri.image_vectors) == 1


class _Crashing(StaticBackend):
    def embed_texts(self, texts: Any, *, normalize: bool = True) -> Any:
        raise RuntimeError("a bug, not the caller's fault")


@pytest.mark.parametrize(
    "backend,status,code",
    [
        (StaticBackend(fail_with=ModelError("the model failed on this batch")), 502, "model_error"),
        (StaticBackend(fail_with=BackendUnavailableError("endpoint is not InService")), 503, "endpoint_unavailable"),
        (_Crashing(), 500, "internal_error"),
    ],
    ids=["model error", "endpoint unavailable", "unexpected exception"],
)
def test_backend_failures_are_json_too(backend: StaticBackend, status: int, code: str) -> None:
    with serving(backend, Settings()) as running:
        answer = go_post(running.url, go_marshal(["a red circle"], None))
    assert (answer.status, answer.code) == (status, code) and answer.error
    assert "Traceback" not in answer.error and "a bug" not in answer.error
