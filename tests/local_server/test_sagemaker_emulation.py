"""boto3's sagemaker-runtime client against the emulation, and the whole cloud path on one machine."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import random
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_server.background import serve_in_thread
from local_server.cli import bind
from local_server.sagemaker_emulation import NO_ANSWER, HttpContainer, RuntimeFront
from model_code.tiny_shapes.shapes import render
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.backends.sagemaker import map_model_error
from omnisearch_embed.embeddings import decode_matrix
from omnisearch_embed.settings import Settings
from tests.helpers.ping import wait_healthy
from tests.local_server.serving import MainServer, Running, png_bytes, serving


def invoke(runtime: Any, body: bytes, content_type: str = "application/json", **kw: Any) -> dict[str, Any]:
    return runtime.invoke_endpoint(EndpointName="local", ContentType=content_type, Body=body, **kw)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_texts_as_json_floats_and_base64(runtime: Any, tiny: Any) -> None:
    texts = ["a red circle", "a blue star " * 40]
    want = tiny.embed_texts(texts)
    answer = invoke(runtime, json.dumps({"texts": texts}).encode())
    assert answer["ContentType"] == "application/json" and answer["InvokedProductionVariant"] == "AllTraffic"
    body = json.loads(answer["Body"].read())
    assert body["model"] == "tiny-shapes" and body["dimension"] == want.dimension
    assert body["truncated"] == [False, True] and body["tokens"] == want.tokens
    assert np.allclose(body["embeddings"], want.vectors, atol=1e-5)
    packed = json.loads(invoke(runtime, json.dumps({"texts": texts, "encoding": "base64"}).encode())["Body"].read())
    assert np.allclose(decode_matrix(packed["embeddings"], packed["dimension"]), want.vectors, atol=1e-5)


def test_images_raw_and_npy(runtime: Any, tiny: Any) -> None:
    data = png_bytes(render("green", "square", "large", random.Random(5)))
    want = tiny.embed_images([data]).vectors
    raw = json.loads(invoke(runtime, data, "image/png")["Body"].read())
    assert np.allclose(raw["embeddings"], want, atol=1e-5)
    npy = invoke(
        runtime, json.dumps({"images": [base64.b64encode(data).decode()]}).encode(), Accept="application/x-npy"
    )
    assert npy["ContentType"] == "application/x-npy"
    matrix = np.load(io.BytesIO(npy["Body"].read()), allow_pickle=False)
    assert matrix.dtype == np.float32 and np.allclose(matrix, want, atol=1e-5)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [(b"{not json", "application/json", 400, "invalid_json"),
     (b'{"texts": []}', "application/json", 400, "invalid_input"),
     (b"not an image", "image/png", 422, "invalid_image"),
     (b'{"texts": ["a"]}', "application/xml", 415, "unsupported_media_type")],
    ids=["invalid json", "empty texts", "not an image", "content type"],
)  # fmt: skip
def test_container_errors_raise_model_error_like_the_real_runtime(
    runtime: Any, server: MainServer, body: bytes, content_type: str, status: int, code: str
) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        invoke(runtime, body, content_type)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == status
    assert response["Error"]["Message"].startswith(f"Received client error ({status}) from primary with message")
    assert "/aws/sagemaker/Endpoints/local" in response["LogStreamArn"]
    original = json.loads(response["OriginalMessage"])  # the container's JSON error body
    assert set(original) == {"code", "message"} and original["code"] == code
    assert "Traceback" not in response["OriginalMessage"]
    assert invoke(runtime, b'{"texts": ["still up"]}')["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_payload_over_six_mb_is_refused_as_the_runtime_does(runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, b"x" * (6 * 1024 * 1024 + 1), "application/octet-stream")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_container_routes(server: MainServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert wait_healthy(client).json()["status"] == "Healthy"
        direct = client.post("/invocations", json={"texts": ["a red circle"]})
        assert direct.status_code == 200 and direct.json()["model"] == "tiny-shapes"


def test_the_cloud_path_gives_the_local_vectors(server: MainServer, cloud_server: Running) -> None:
    data = png_bytes(render("red", "circle", "large", random.Random(9)))
    texts = ["a red circle", "a large yellow star", "x " * 100]
    with httpx.Client(timeout=60) as client:
        for path, kwargs in [
            ("/embed/text", {"json": {"text": texts[0]}}),
            ("/embed/batch/text", {"json": {"texts": texts}}),
            ("/embed/image", {"files": {"file": ("red.png", data, "image/png")}}),
            ("/embed/batch/image", {"json": {"images": [base64.b64encode(data).decode()] * 2}}),
        ]:
            local = client.post(server.url + path, **kwargs).json()
            cloud = client.post(cloud_server.url + path, **kwargs)
            assert cloud.status_code == 200, cloud.text
            cloud_body = cloud.json()
            assert cloud_body["service"] == "sagemaker" and local["service"] == "local"
            assert cloud_body["model"] == local["model"] == "tiny-shapes"
            pairs = [(cloud_body["embedding"], local["embedding"])] if "embedding" in local else []
            pairs += list(zip(cloud_body.get("embeddings", []), local.get("embeddings", []), strict=True))
            assert pairs and all(cosine(a, b) >= 0.9999 for a, b in pairs), path
            if "truncated" in local:
                assert cloud_body["truncated"] == local["truncated"]
        bad = client.post(cloud_server.url + "/embed/text", json={"text": ""})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "empty_text"
        assert client.get(cloud_server.url + "/health").json()["service"] == "sagemaker"


@pytest.fixture
def fallback_server(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """USE_SAGEMAKER=true, FALLBACK=local, and the runtime URL pointing at a port where nothing listens."""
    from local_server.cli import bind

    dead = bind("127.0.0.1", 0)
    port = dead.getsockname()[1]
    dead.close()
    for name, value in {
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    env = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": "gone", "FALLBACK": "local", "CLIP_MODEL": "tiny-shapes"}
    settings = Settings.from_env(env)
    with serving(
        backend_from_settings(settings, local_factory=lambda: tiny), settings, local_model=lambda: tiny, workers=4
    ) as running:
        yield running


def test_fallback_local_answers_when_the_endpoint_is_unreachable(fallback_server: Running, tiny: Any) -> None:
    with httpx.Client(base_url=fallback_server.url, timeout=60) as client:
        body = client.post("/embed/text", json={"text": "a red circle"}).json()
        assert body["service"] == "local" and body["model"] == "tiny-shapes"
        assert cosine(body["embedding"], tiny.embed_texts(["a red circle"]).vectors[0]) >= 0.9999


@contextlib.contextmanager
def container_that(behaviour: str) -> Iterator[str]:
    """A "container" URL whose port refuses connections, drops each one (RST), or never answers."""
    listener = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    if behaviour == "refuses":
        listener.close()
        yield url
        return
    held: list[socket.socket] = []
    stop = threading.Event()
    listener.settimeout(0.05)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            conn.recv(65536)
            if behaviour == "drops":  # a reset, as the kernel sends it for a process that died mid-request
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [("refuses", "Could not connect to container primary: the connection was refused"),
     ("drops", "Container primary closed the connection before sending a complete response"),
     ("never answers", NO_ANSWER)],
)  # fmt: skip
def test_a_container_that_gives_no_answer_is_worded_by_what_happened(behaviour: str, says: str) -> None:
    with (
        container_that(behaviour) as container,
        serve_in_thread(
            RuntimeFront(HttpContainer(container, timeout_seconds=0.5))  # type: ignore[arg-type]
        ) as front,
    ):
        client = boto3.client(
            "sagemaker-runtime", endpoint_url=front, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}),
        )  # fmt: skip
        with contextlib.closing(client), pytest.raises(client.exceptions.ModelError) as caught:
            invoke(client, b'{"texts": ["a"]}')
    response = caught.value.response
    assert response["OriginalStatusCode"] == 0 and response["OriginalMessage"].startswith(says)
    assert response["Error"]["Message"].startswith(f'Received server error (0) from primary with message "{says}')
    if behaviour != "never answers":
        assert "timed out" not in response["OriginalMessage"]
    error = map_model_error(response, response["Error"]["Message"], "local")  # the core's reading: stable code
    assert (int(error.status), error.code) == (502, "model_error") and says in error.message
