"""The official ``openai`` Python SDK against the local server: the clients people already use.

Each case goes through real HTTP into the same Lambda handlers; errors must surface as the SDK's own
exception classes, which it picks from the HTTP status of OpenAI's error shape.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import ModelError, ThrottledError
from omnisearch_embed.settings import Settings
from tests.local_server.serving import MainServer, png_bytes, serving

TEXTS = ["a red circle", "a photo of a small blue star", "green triangle"]
API_KEY = "sk-local-test"


class FaultInjectingBackend:
    """Delegates to the real model, but answers two trigger texts with the backend faults a client sees."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.service = inner, inner.model_id, inner.service

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        if "__throttle__" in texts:
            raise ThrottledError("the model endpoint is throttling; retry with backoff")
        if "__crash__" in texts:
            raise ModelError("the model failed on this input")
        return self.inner.embed_texts(texts, normalize=normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self.inner.embed_images(images, normalize=normalize)

    def health(self) -> dict[str, Any]:
        return self.inner.health()


@pytest.fixture(scope="module")
def guarded_url(tiny: Any) -> Iterator[str]:
    """A second server with ``--api-key`` set and a fault-injecting backend."""
    with serving(FaultInjectingBackend(tiny), Settings(api_key=API_KEY), local_model=lambda: tiny) as running:
        yield running.url


@contextmanager
def client(url: str, api_key: str = "unused") -> Iterator[openai.OpenAI]:
    """An SDK client, closed afterwards (a collected connection pool is a ResourceWarning, an error here)."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=60) as sdk:
        yield sdk


def batch_vectors(url: str, path: str, payload: dict[str, Any]) -> np.ndarray:
    response = httpx.post(f"{url}{path}", json=payload, timeout=60)
    response.raise_for_status()
    return np.array(response.json()["embeddings"], dtype=np.float32)


def test_string_and_list_match_the_batch_route_in_both_encodings(server: MainServer) -> None:
    expected = batch_vectors(server.url, "/embed/batch/text", {"texts": TEXTS})
    with client(server.url) as sdk:
        as_floats = sdk.embeddings.create(model="tiny-shapes", input=TEXTS, encoding_format="float")
        as_default = sdk.embeddings.create(model="tiny-shapes", input=TEXTS)  # the SDK asks for base64, decodes
        single = sdk.embeddings.create(model="tiny-shapes", input=TEXTS[0])

    for result in (as_floats, as_default):
        assert [d.index for d in result.data] == [0, 1, 2]
        np.testing.assert_allclose(np.array([d.embedding for d in result.data]), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(single.data[0].embedding), expected[0], rtol=0, atol=1e-6)
    assert as_floats.model == "tiny-shapes"
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens > len(TEXTS) * 2


def test_raw_base64_is_little_endian_float32(server: MainServer) -> None:
    response = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": "tiny-shapes", "input": TEXTS[0], "encoding_format": "base64"},
        timeout=60,
    )
    vector = np.frombuffer(base64.b64decode(response.json()["data"][0]["embedding"]), dtype="<f4")
    expected = batch_vectors(server.url, "/embed/batch/text", {"texts": [TEXTS[0]]})[0]
    np.testing.assert_array_equal(vector, expected)


def test_images_by_data_uri(server: MainServer) -> None:
    png = png_bytes(Image.new("RGB", (64, 64), (220, 30, 30)))
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    with client(server.url) as sdk:
        result = sdk.embeddings.create(
            model="tiny-shapes", input=[uri], encoding_format="float", extra_body={"modality": "image"}
        )
    expected = batch_vectors(server.url, "/embed/batch/image", {"images": [uri]})
    np.testing.assert_allclose(np.array(result.data[0].embedding), expected[0], rtol=0, atol=1e-6)
    assert result.usage.prompt_tokens == 0


def test_models_list(server: MainServer) -> None:
    with client(server.url) as sdk:
        assert [m.id for m in sdk.models.list()] == ["tiny-shapes"]


@pytest.mark.parametrize(
    ("kwargs", "error_class", "code"),
    [
        ({"model": "tiny-shapes", "input": [[1, 2, 3]]}, openai.BadRequestError, "token_input_not_supported"),
        ({"model": "tiny-shapes", "input": ""}, openai.BadRequestError, "empty_text"),
        ({"model": "tiny-shapes", "input": "x", "dimensions": 16}, openai.BadRequestError, "unsupported_dimensions"),
        ({"model": "text-embedding-3-small", "input": "x"}, openai.NotFoundError, "model_not_found"),
    ],
)
def test_bad_requests_raise_the_sdk_classes(
    server: MainServer, kwargs: dict[str, Any], error_class: type[Exception], code: str
) -> None:
    with client(server.url) as sdk:
        with pytest.raises(error_class) as info:
            sdk.embeddings.create(**kwargs)
        assert info.value.code == code  # type: ignore[attr-defined]
        sdk.embeddings.create(model="tiny-shapes", input="still serving")


def test_api_key_by_bearer_token(guarded_url: str) -> None:
    with client(guarded_url, api_key="wrong") as sdk, pytest.raises(openai.AuthenticationError):
        sdk.embeddings.create(model="tiny-shapes", input="x")
    with client(guarded_url, api_key=API_KEY) as sdk:
        result = sdk.embeddings.create(model="tiny-shapes", input="x")
    assert len(result.data) == 1


@pytest.mark.parametrize(
    ("text", "error_class"),
    [("__throttle__", openai.RateLimitError), ("__crash__", openai.InternalServerError)],
)
def test_backend_faults_raise_the_sdk_classes(guarded_url: str, text: str, error_class: type[Exception]) -> None:
    with client(guarded_url, api_key=API_KEY) as sdk, pytest.raises(error_class):
        sdk.embeddings.create(model="tiny-shapes", input=text)
