"""Every route of the API over real HTTP, each answer checked against the model called directly."""

from __future__ import annotations

import base64
import math
import random
from typing import Any

import httpx
import pytest

from local_server.server import LocalServer, proxy_event_builder
from model_code.tiny_shapes.shapes import render
from omnisearch_embed.api import create_app
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import decode_matrix
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend
from tests.local_server.serving import MainServer, png_bytes


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_same(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    assert cosine(got, want) >= 0.9999


def shape_png(colour: str, shape: str, seed: int = 7) -> bytes:
    return png_bytes(render(colour, shape, "large", random.Random(seed)))


@pytest.fixture(scope="module")
def client(server: MainServer) -> Any:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


# Powertools 3.37's swagger_handler reads its bundled JS/CSS with Path.open(...).read() and never closes them.
SWAGGER_LEAKS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def b64_png(colour: str, shape: str) -> str:
    return base64.b64encode(shape_png(colour, shape)).decode()


# One valid request per route the app serves; the coverage test below keeps this table complete.
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/health"): {},
    ("POST", "/embed/text"): {"json": {"text": "a red circle"}},
    ("POST", "/embed/image"): {"files": {"file": ("red.png", shape_png("red", "circle"), "image/png")}},
    ("POST", "/embed/batch/text"): {"json": {"texts": ["a red circle", "a blue square"]}},
    ("POST", "/embed/batch/image"): {"json": {"images": [base64.b64encode(shape_png("blue", "star")).decode()]}},
    ("POST", "/embed/batch"): {"json": {"items": [{"text": "a red circle"}, {"image": b64_png("red", "circle")}]}},
    ("POST", "/classify"): {"json": {"image": b64_png("red", "circle"), "labels": ["red circle", "blue star"]}},
    ("POST", "/v1/embeddings"): {"json": {"input": "a red circle", "model": "tiny-shapes"}},
    ("GET", "/v1/models"): {},
    ("GET", "/v1/models/{model_id}"): {"url": "/v1/models/tiny-shapes"},  # a path parameter, as API Gateway passes it
}


@SWAGGER_LEAKS
def test_every_route_of_the_app_answers_over_http(server: MainServer, client: httpx.Client) -> None:
    schema = client.get("/swagger", params={"format": "json"}).json()
    served = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert served, "the OpenAPI document lists no routes"
    assert served <= SAMPLES.keys(), f"add a sample request for {sorted(served - SAMPLES.keys())}"
    for method, path in sorted(served):
        sample = dict(SAMPLES[(method, path)])
        response = client.request(method, sample.pop("url", path), **sample)
        assert response.status_code == 200, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["x-amzn-requestid"]


def test_routes_match_the_template_resources(server: MainServer) -> None:
    assert {"/embed/text", "/embed/image", "/embed/batch/text", "/embed/batch/image", "/health"} <= set(
        server.server.routes.resources
    )


def test_health_and_deep_health(client: httpx.Client) -> None:
    shallow = client.get("/health").json()
    assert shallow["status"] == "ok" and shallow["model"] == "tiny-shapes" and shallow["service"] == "local"
    deep = client.get("/health", params={"deep": "true"})
    assert deep.status_code == 200 and deep.json()["status"] == "ok"
    assert deep.headers["cache-control"] == "no-store"


def test_text_matches_the_model_and_base64_matches_float(client: httpx.Client, tiny: Any) -> None:
    want = tiny.embed_texts(["a green triangle"]).vectors[0]
    plain = client.post("/embed/text", json={"text": "a green triangle"}).json()
    assert plain["model"] == "tiny-shapes" and plain["service"] == "local" and plain["truncated"] is False
    assert plain["dimension"] == len(want)
    assert_same(plain["embedding"], want)
    packed = client.post("/embed/text", json={"text": "a green triangle", "encoding": "base64"}).json()
    assert decode_matrix(packed["embedding"], packed["dimension"])[0] == pytest.approx(plain["embedding"], abs=1e-6)


def test_long_text_is_truncated_not_refused(client: httpx.Client) -> None:
    body = client.post("/embed/text", json={"text": "red circle " * 200}).json()
    assert body["truncated"] is True


def test_batch_text_keeps_order(client: httpx.Client, tiny: Any) -> None:
    texts = ["a red circle", "a blue square", "a yellow star", "a pink triangle"]
    body = client.post("/embed/batch/text", json={"texts": texts}).json()
    assert body["count"] == 4 and body["truncated"] == [False] * 4
    for got, want in zip(body["embeddings"], tiny.embed_texts(texts).vectors, strict=True):
        assert_same(got, want)


def test_multipart_upload_as_curl_sends_it(client: httpx.Client, tiny: Any) -> None:
    data = shape_png("cyan", "square")
    want = tiny.embed_images([data]).vectors[0]
    # httpx builds the same multipart/form-data body as `curl -F "file=@cyan.png"`
    response = client.post("/embed/image", files={"file": ("cyan.png", data, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "truncated" not in body and body["model"] == "tiny-shapes"
    assert_same(body["embedding"], want)
    with_options = client.post(
        "/embed/image", files={"file": ("cyan.png", data, "image/png")}, data={"encoding": "base64"}
    ).json()
    assert_same(decode_matrix(with_options["embedding"], with_options["dimension"])[0], want)


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_raw_image_bodies(client: httpx.Client, tiny: Any, fmt: str, content_type: str) -> None:
    data = png_bytes(render("orange", "star", "large", random.Random(3)), fmt)
    response = client.post("/embed/image", content=data, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert_same(response.json()["embedding"], tiny.embed_images([data]).vectors[0])
    packed = client.post(
        "/embed/image", content=data, headers={"content-type": content_type}, params={"encoding": "base64"}
    ).json()
    assert_same(decode_matrix(packed["embedding"], packed["dimension"])[0], tiny.embed_images([data]).vectors[0])


def test_json_base64_and_data_uri_images(client: httpx.Client, tiny: Any) -> None:
    data = shape_png("purple", "circle")
    want = tiny.embed_images([data]).vectors[0]
    b64 = base64.b64encode(data).decode()
    for ref in (b64, f"data:image/png;base64,{b64}"):
        response = client.post("/embed/image", json={"image": ref})
        assert response.status_code == 200, response.text
        assert_same(response.json()["embedding"], want)


def test_batch_images_keep_order(client: httpx.Client, tiny: Any) -> None:
    images = [shape_png(c, s) for c, s in (("red", "square"), ("green", "star"), ("blue", "circle"))]
    body = client.post("/embed/batch/image", json={"images": [base64.b64encode(i).decode() for i in images]}).json()
    assert body["count"] == 3
    for got, want in zip(body["embeddings"], tiny.embed_images(images).vectors, strict=True):
        assert_same(got, want)


def test_a_red_circle_caption_is_nearest_a_red_circle(client: httpx.Client) -> None:
    shapes = [
        ("blue", "square"), ("red", "circle"), ("green", "triangle"), ("yellow", "star"),
        ("red", "square"), ("blue", "circle"), ("red", "triangle"), ("purple", "circle"),
    ]  # fmt: skip
    images = [(colour, shape, shape_png(colour, shape, seed)) for colour, shape in shapes for seed in (11, 12, 13)]
    vectors = [
        client.post("/embed/image", files={"file": ("s.png", data, "image/png")}).json()["embedding"]
        for _, _, data in images
    ]
    query = client.post("/embed/text", json={"text": "a red circle"}).json()["embedding"]
    scores = [cosine(query, v) for v in vectors]
    best = scores.index(max(scores))
    assert images[best][:2] == ("red", "circle"), sorted(
        zip(scores, [i[:2] for i in images], strict=True), reverse=True
    )[:5]


@SWAGGER_LEAKS
def test_swagger_ui_and_openapi(client: httpx.Client) -> None:
    page = client.get("/swagger")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "swagger" in page.text.lower()
    spec = client.get("/swagger", params={"format": "json"}).json()
    assert spec["openapi"].startswith("3.") and "/embed/text" in spec["paths"]


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "route_not_found"
    wrong = client.get("/embed/text")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/health").status_code == 200


def test_a_powertools_without_to_proxy_event_stops_the_start_naming_it() -> None:
    def renamed(backend: Backend, settings: Settings) -> Any:
        app = create_app(backend, settings)
        app._to_proxy_event = None  # as a Powertools release that renamed its private converter
        return app

    with pytest.raises(
        RuntimeError, match=r"^aws-lambda-powertools \S+: APIGatewayRestResolver has no _to_proxy_event"
    ):
        LocalServer(StaticBackend(), Settings(), app_factory=renamed, workers=1)
    assert callable(proxy_event_builder(create_app(StaticBackend(), Settings())))  # the release requirements pin
