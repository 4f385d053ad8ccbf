"""Over HTTP, a bad image inside ``/embed/batch/image`` names its index, served locally and through SageMaker.

The local server runs the model in process; ``cloud_server`` reaches the same model through the SageMaker
runtime emulation with boto3. A pixel limit lowered in the model (not in the API) makes the model itself
refuse one image that the API's checks let through.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from omnisearch_testkit.images import image_bytes, truncated_png
from tests.local_server.serving import Running


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SMALL = image_bytes(size=(24, 16))
LARGE = image_bytes(size=(64, 64))


@pytest.fixture(params=["local", "sagemaker"])
def url(request: pytest.FixtureRequest) -> str:
    running: Running = request.getfixturevalue("server" if request.param == "local" else "cloud_server")
    return running.url


def test_a_truncated_png_is_named_by_index(url: str) -> None:
    response = httpx.post(f"{url}/embed/batch/image", json={"images": [b64(SMALL), b64(truncated_png())]}, timeout=60)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "corrupt_image" and error["message"].startswith("images[1]: ")


def test_an_image_the_model_refuses_is_named_by_index(url: str, tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny.container()[0]._inputs, "MAX_IMAGE_PIXELS", 1000)  # SMALL has 384, LARGE 4096
    images = [b64(SMALL), b64(SMALL), b64(LARGE)]
    response = httpx.post(f"{url}/embed/batch/image", json={"images": images}, timeout=60)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {
        "code": "image_too_many_pixels",
        "message": "images[2] has 64x64 pixels, over 1000",
    }
    ok = httpx.post(f"{url}/embed/batch/image", json={"images": images[:2]}, timeout=60)
    assert ok.status_code == 200 and ok.json()["count"] == 2
