"""The archive under the real SageMaker PyTorch serving stack, offline: the vectors, the flags, the errors.

The toolkit (Python 3.12, torch 2.6.0, TorchServe) serves package_model.py's tiny-shapes archive with pip
cut off from every index, with ONNX Runtime (the archive's ONNX towers, on the CPU); the local backend on
this venv's torch eager (open_clip's own forward pass) is the reference for the vectors.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_server.clip_backend import LocalClipBackend
from omnisearch_embed.backends.sagemaker import SageMakerBackend, map_client_error
from omnisearch_embed.errors import EmbedError
from omnisearch_testkit.golden_texts import GOLDEN
from omnisearch_testkit.images import image_bytes
from omnisearch_testkit.toolkit_harness import (
    LOCK_PATH,
    PYTHON_VERSION,
    Toolkit,
    free_port,
    serving_venv,
    start_toolkit,
    toolkit_environment,
)
from tests.helpers.waiting import wait_for
from tests.serving_stack.conftest import require_serving_stack

ENDPOINT = "omnisearch-embed-test"
LONG_TEXT = " ".join(["a small red circle next to a large blue square"] * 12)  # ~120 tokens
TEXTS = ["a red circle", "a photo of a blue square on white", "", "ünïcödé 🐱 text", LONG_TEXT]


@pytest.fixture(scope="module")
def local() -> LocalClipBackend:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLIP_ENGINE", "torch")
        backend = LocalClipBackend("tiny-shapes")
    assert backend.health()["engine"] == "torch"
    return backend


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def test_ping(toolkit: Toolkit) -> None:
    with urllib.request.urlopen(toolkit.url + "/ping", timeout=10) as response:
        assert response.status == 200


def test_the_archive_installed_its_packages_from_its_own_wheels(toolkit: Toolkit) -> None:
    # /ping answers before every worker has logged its model: wait for the line rather than race it
    loaded = "loaded tiny-shapes with onnxruntime fp32 on the CPU"  # the archive's ONNX towers serve
    wait_for(lambda: loaded in toolkit.log.read_text(errors="replace"), timeout=120, interval=0.2)
    log = toolkit.log.read_text(errors="replace")
    assert f"Looking in links: {toolkit.workdir}/base/model/code/wheels" in log
    assert "Successfully installed" in log and "open_clip_torch-3.3.0" in log and "onnxruntime-1.32.0" in log
    site = toolkit.pip_prefix / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    assert (site / "open_clip").is_dir()
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert not installed & {"torch", "torchvision", "numpy", "pillow"}  # the container's own stay untouched


def test_an_archive_without_its_wheels_cannot_start_offline(online_only_start: tuple[str, str]) -> None:
    error, log = online_only_start
    assert "serve exited" in error
    assert "failed to install required packages" in log and "Successfully installed" not in log


def test_one_process_cannot_start_a_second_toolkit(toolkit: Toolkit, tiny_archive: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already runs a toolkit"):
        start_toolkit(tiny_archive, tmp_path)


def test_a_second_toolkit_waits_for_the_lock(toolkit: Toolkit) -> None:
    probe = "import fcntl, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    taken = subprocess.run([sys.executable, "-c", probe, str(LOCK_PATH)], capture_output=True, text=True, timeout=60)
    assert taken.returncode != 0 and "BlockingIOError" in taken.stderr


def test_pip_in_the_container_reaches_no_index(tmp_path: Path) -> None:
    """The environment the toolkit runs in really is offline, and the venv lacks the archive's packages."""
    require_serving_stack()
    env = toolkit_environment(serving_venv(), tmp_path, free_port(), None)  # exactly what serve gets
    python = str(serving_venv() / "bin" / "python")
    download = subprocess.run(
        [python, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path), "six==1.17.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert download.returncode != 0, download.stdout
    assert "No matching distribution found for six==1.17.0" in download.stderr, download.stderr[-500:]
    assert not list(tmp_path.glob("*.whl"))
    bare = subprocess.run([python, "-c", "import open_clip"], env=env, capture_output=True, timeout=120)
    assert bare.returncode != 0, "open_clip is in the serving venv itself: the offline install proves nothing"


def test_texts_give_the_local_backends_vectors_and_flags(toolkit: Toolkit, local: LocalClipBackend) -> None:
    status, content_type, raw = post(toolkit.url, json.dumps({"texts": TEXTS}).encode())
    assert status == 200 and content_type.startswith("application/json"), raw[:300]
    served = json.loads(raw)
    expected = local.embed_texts(TEXTS)
    assert served["model"] == "tiny-shapes" and served["dimension"] == expected.dimension
    assert cosines(served["embeddings"], expected.vectors).min() >= 0.9999
    assert served["tokens"] == expected.tokens
    assert served["truncated"] == [False, False, False, False, True]
    assert served["tokens"][-1] == 77


def test_golden_texts_give_open_clips_vectors_through_onnx_runtime(toolkit: Toolkit, local: LocalClipBackend) -> None:
    status, _, raw = post(toolkit.url, json.dumps({"texts": GOLDEN}).encode())
    assert status == 200, raw[:300]
    served = json.loads(raw)
    assert cosines(served["embeddings"], local.embed_texts(GOLDEN).vectors).min() >= 0.9999
    assert served["logit_scale"] == pytest.approx(local.container()[1].logit_scale)


def test_images_give_the_local_backends_vectors(toolkit: Toolkit, local: LocalClipBackend) -> None:
    images = [image_bytes("PNG", (64, 64), (220, 20, 20)), image_bytes("JPEG", (300, 200)), image_bytes("WEBP")]
    body = {"images": [base64.b64encode(i).decode() for i in images], "encoding": "base64"}
    status, _, raw = post(toolkit.url, json.dumps(body).encode())
    assert status == 200, raw[:300]
    served = json.loads(raw)
    matrix = np.frombuffer(base64.b64decode(served["embeddings"]), dtype="<f4").reshape(len(images), -1)
    assert cosines(matrix.tolist(), local.embed_images(images).vectors).min() >= 0.9999
    single_status, _, single = post(toolkit.url, images[0], "image/png")  # a raw image body
    assert single_status == 200
    assert cosines(json.loads(single)["embeddings"], matrix[:1].tolist()).min() >= 0.9999


BAD_BODIES = {  # body, content type, the message's start, (status, code) as every other door answers
    "not JSON": (b"{texts: [", "application/json", "body is not valid JSON", (400, "invalid_json")),
    "unknown field": (
        b'{"texts": ["a"], "colour": "red"}',
        "application/json",
        "unknown field(s) colour",
        (400, "invalid_input"),
    ),
    "bad base64": (
        b'{"images": ["@@not base64@@"]}',
        "application/json",
        "images[0] is not valid base64",
        (400, "invalid_base64"),
    ),
    "not an image": (
        json.dumps({"images": [base64.b64encode(b"plain text, no pixels").decode()]}).encode(),
        "application/json",
        "images[0] is not a readable image",
        (422, "invalid_image"),
    ),
    "wrong content type": (
        b"a,b,c",
        "text/csv",
        "unsupported content type 'text/csv'",
        (415, "unsupported_media_type"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_each_bad_body_is_its_4xx_with_the_code_and_message_first(toolkit: Toolkit, case: str) -> None:
    body, content_type, start, (want_status, want_code) = BAD_BODIES[case]
    status, _, raw = post(toolkit.url, body, content_type)
    assert status == want_status, (status, raw[:300])
    first_line = json.loads(raw.decode().splitlines()[0])
    assert first_line["code"] == want_code and first_line["message"].startswith(start), first_line


@pytest.fixture(scope="module")
def runtime(runtime_url: str) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=60)
    return boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=runtime_url, config=config)


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_sagemaker_backend_maps_each_container_4xx_to_a_public_4xx(runtime: Any, case: str) -> None:
    body, content_type, start, (status, code) = BAD_BODIES[case]
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type)
    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    error = map_client_error(raised.value, ENDPOINT)
    assert (error.status, error.code) == (status, code), error
    assert error.message.startswith(start), error.message
    assert "Traceback" not in error.message and "InputError" not in error.message


def test_sagemaker_backend_end_to_end(runtime: Any, local: LocalClipBackend) -> None:
    backend = SageMakerBackend(ENDPOINT, "tiny-shapes", client=runtime)
    texts = backend.embed_texts(TEXTS)
    assert cosines(texts.vectors, local.embed_texts(TEXTS).vectors).min() >= 0.9999
    assert texts.truncated == [False, False, False, False, True] and texts.model == "tiny-shapes"
    picture = image_bytes("PNG", (64, 64), (220, 20, 20))
    assert cosines(backend.embed_images([picture]).vectors, local.embed_images([picture]).vectors).min() >= 0.9999
    with pytest.raises(EmbedError) as bad:
        backend.embed_images([b"plain text, no pixels"])
    assert (bad.value.status, bad.value.code) == (422, "invalid_image")
    assert bad.value.message.startswith("images[0] is not a readable image"), bad.value.message
