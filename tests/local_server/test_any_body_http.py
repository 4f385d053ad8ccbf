"""Property over real HTTP: any body under any Content-Type, on every POST route, gets JSON and no 5xx.

The same strategies as tests/functions/test_any_body.py, sent with httpx to the local server (tiny-shapes,
dynamic batching), so the HTTP adapter, the model's tokenizer and image decoding are in the path too.
Fewer examples than through the handler: each one is a real request.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings

from omnisearch_embed.api import create_app
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend
from tests.helpers.fuzz import BOUNDED, Request, check_answer, post_paths, requests
from tests.local_server.serving import MainServer

PATHS = [
    "/classify",
    "/embed/batch",
    "/embed/batch/image",
    "/embed/batch/text",
    "/embed/image",
    "/embed/text",
    "/v1/embeddings",
]


@pytest.fixture(scope="module")
def client(server: MainServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def test_paths_are_the_served_post_routes() -> None:
    assert post_paths(create_app(StaticBackend(), Settings())) == PATHS


@settings(BOUNDED, max_examples=60)
@given(request=requests(PATHS))
def test_any_body_any_content_type_over_http(client: httpx.Client, request: Request) -> None:
    ctype = request.content_type.strip()  # HTTP header values carry no outer whitespace
    headers = {"content-type": ctype} if ctype else {}
    response = client.post(request.path, content=request.body, headers=headers)
    check_answer(request.path, response.status_code, response.headers.get("content-type", ""), response.content)
    good = client.post("/embed/text", json={"text": "a red circle"})
    assert good.status_code == 200 and len(good.json()["embedding"]) == good.json()["dimension"]
