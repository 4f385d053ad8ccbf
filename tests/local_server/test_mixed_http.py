"""Mixed batches and compact encodings over real HTTP, locally and through the SageMaker emulation.

The mixed answers must equal what the single-kind batch routes give for the same items, in the caller's
order; the official ``openai`` SDK sends ``modality: auto`` through ``extra_body`` and is otherwise unchanged.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.local_server.serving import Running, png_bytes

RED = png_bytes(Image.new("RGB", (48, 48), (215, 35, 35)))
BLUE = png_bytes(Image.new("RGB", (48, 48), (40, 75, 220)))
URIS = ["data:image/png;base64," + base64.b64encode(p).decode() for p in (RED, BLUE)]
TEXTS = ["a red circle", "a blue star"]


@pytest.fixture(params=["local", "sagemaker"])
def url(request: pytest.FixtureRequest) -> str:
    running: Running = request.getfixturevalue("server" if request.param == "local" else "cloud_server")
    return running.url


def post(url: str, path: str, payload: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=payload, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_embed_batch_equals_the_single_kind_routes_in_order(url: str) -> None:
    texts = post(url, "/embed/batch/text", {"texts": TEXTS})["embeddings"]
    images = post(url, "/embed/batch/image", {"images": URIS})["embeddings"]
    items = [{"image": URIS[0]}, {"text": TEXTS[0]}, {"text": TEXTS[1]}, {"image": URIS[1]}]
    mixed = post(url, "/embed/batch", {"items": items})
    expected = np.array([images[0], texts[0], texts[1], images[1]])
    np.testing.assert_allclose(np.array(mixed["embeddings"]), expected, atol=1e-5)
    assert mixed["count"] == 4 and mixed["model"] == "tiny-shapes"


def test_a_bad_item_over_http_names_its_index(url: str) -> None:
    items = [{"text": "a"}, {"image": URIS[0]}, {"image": "data:image/png;base64,iVBORw0KGgo="}]
    response = httpx.post(f"{url}/embed/batch", json={"items": items}, timeout=60)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("items[2]")


def test_the_openai_sdk_sends_a_mixed_list_with_modality_auto(url: str) -> None:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        answer = sdk.embeddings.create(
            model="tiny-shapes", input=[TEXTS[0], URIS[1], TEXTS[1]], extra_body={"modality": "auto"}
        )
        texts = sdk.embeddings.create(model="tiny-shapes", input=TEXTS, encoding_format="float")
        images = sdk.embeddings.create(
            model="tiny-shapes", input=[URIS[1]], encoding_format="float", extra_body={"modality": "image"}
        )
    got = np.array([d.embedding for d in answer.data])
    expected = np.array([texts.data[0].embedding, images.data[0].embedding, texts.data[1].embedding])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # the SDK decoded its own base64 request
    assert [d.index for d in answer.data] == [0, 1, 2]


def test_int8_and_ubinary_recover_the_float_vectors(url: str) -> None:
    floats = np.array(post(url, "/embed/batch/text", {"texts": TEXTS})["embeddings"])
    int8 = post(url, "/embed/batch/text", {"texts": TEXTS, "encoding": "int8"})
    restored = np.array(int8["embeddings"]) * np.array(int8["scales"])[:, None]
    assert np.abs(restored - floats).max() <= max(int8["scales"]) / 2 + 1e-6
    bits = post(url, "/embed/batch/text", {"texts": TEXTS, "encoding": "ubinary"})["embeddings"]
    unpacked = [np.unpackbits(np.frombuffer(base64.b64decode(b), np.uint8))[: floats.shape[1]] for b in bits]
    np.testing.assert_array_equal(np.array(unpacked), (floats > 0).astype(np.uint8))
