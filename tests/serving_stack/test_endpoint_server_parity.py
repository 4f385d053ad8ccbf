"""Our serving container and the stock toolkit serve the same archive alike: vectors, flags, formats, 4xx.

The toolkit runs package_model.py's tiny-shapes archive in the container's stack (Python 3.12, torch
2.6.0, TorchServe); endpoint_server runs the very same unpacked archive (its code/inference.py) in this
venv, with batching. Texts, images and Accept formats must agree; each bad body is a 4xx in both.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from endpoint_server.app import EndpointServer, ServerConfig
from local_server.background import serve_in_thread
from omnisearch_testkit.images import image_bytes
from omnisearch_testkit.toolkit_harness import Toolkit
from tests.helpers.ping import wait_healthy

LONG_TEXT = " ".join(["a small red circle next to a large blue square"] * 12)
TEXTS = ["a red circle", "a photo of a blue square on white", "", "ünïcödé 🐱 text", LONG_TEXT]


@pytest.fixture(scope="module")
def ours(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model_dir = tmp_path_factory.mktemp("ours") / "model"
    with tarfile.open(tiny_archive, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    with serve_in_thread(EndpointServer(ServerConfig(model_dir=str(model_dir)))) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            wait_healthy(client)
        yield url


def post(url: str, body: bytes, content_type: str = "application/json", accept: str = "application/json"):
    headers = {"Content-Type": content_type, "Accept": accept}
    request = urllib.request.Request(url + "/invocations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _both(toolkit: Toolkit, ours: str, *args: object) -> tuple[tuple, tuple]:
    return post(toolkit.url, *args), post(ours, *args)


def test_texts_give_the_same_vectors_flags_and_token_counts(toolkit: Toolkit, ours: str) -> None:
    for encoding in ("float", "base64"):
        body = json.dumps({"texts": TEXTS, "encoding": encoding}).encode()
        (s1, t1, theirs), (s2, t2, mine) = _both(toolkit, ours, body)
        assert (s1, s2) == (200, 200) and t1.startswith("application/json") and t2 == "application/json"
        a, b = json.loads(theirs), json.loads(mine)
        assert {k: a[k] for k in ("model", "dimension", "truncated", "tokens")} == {
            k: b[k] for k in ("model", "dimension", "truncated", "tokens")
        }
        assert b["truncated"] == [False, False, False, False, True]
        if encoding == "base64":
            a["embeddings"], b["embeddings"] = (
                np.frombuffer(base64.b64decode(x["embeddings"]), "<f4").reshape(-1, x["dimension"]) for x in (a, b)
            )
        assert _cosines(a["embeddings"], b["embeddings"]).min() >= 0.9999


def test_images_and_the_npy_format_agree(toolkit: Toolkit, ours: str) -> None:
    png, jpeg = image_bytes("PNG"), image_bytes("JPEG")
    body = json.dumps({"images": [base64.b64encode(i).decode() for i in (png, jpeg)]}).encode()
    (s1, t1, theirs), (s2, t2, mine) = _both(toolkit, ours, body, "application/json", "application/x-npy")
    assert (s1, s2) == (200, 200) and t1.startswith("application/x-npy") and t2 == "application/x-npy"
    a, b = (np.load(io.BytesIO(x), allow_pickle=False) for x in (theirs, mine))
    assert a.shape == b.shape == (2, a.shape[1]) and _cosines(a, b).min() >= 0.9999
    (s1, _, raw_theirs), (s2, _, raw_mine) = _both(toolkit, ours, png, "image/png")
    assert (s1, s2) == (200, 200)
    assert _cosines(json.loads(raw_theirs)["embeddings"], json.loads(raw_mine)["embeddings"]).min() >= 0.9999


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{not json", "application/json"), (b'{"texts": ["a"], "colour": 1}', "application/json"),
     (b'{"images": ["@@@"]}', "application/json"), (b"not an image", "image/png"),
     (b'{"texts": ["a"]}', "application/xml")],
    ids=["not json", "unknown field", "bad base64", "not an image", "content type"],
)  # fmt: skip
def test_each_bad_body_is_a_4xx_in_both(toolkit: Toolkit, ours: str, body: bytes, content_type: str) -> None:
    (s1, _, _), (s2, t2, mine) = _both(toolkit, ours, body, content_type)
    assert 400 <= s1 < 500 and 400 <= s2 < 500
    assert t2 == "application/json" and set(json.loads(mine)) == {"code", "message"}
