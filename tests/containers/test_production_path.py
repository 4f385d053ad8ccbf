"""The production path on one machine: ``sam local start-api`` -> the embed function in its Lambda container ->
boto3 (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) -> the SageMaker runtime front -> our serving image, run as
SageMaker runs it (``docker run IMAGE serve``, the package_model.py archive read-only at /opt/ml/model, port 8080).

The serving image is built on the DLC stand-in (base_images.dlc_cpu): the DLC itself cannot be pulled here. The
slim image (endpoint_server/Dockerfile.cpu) takes the container's place behind the same front for one case;
both images' own contract (ping, vectors, 4xx, draining on ``docker stop``) is test_serving_images.py's.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from containers.engine import docker
from containers.sam import SamCli
from containers.serving_image import Running, run_as_sagemaker
from tests.containers.counting_front import CountingContainer
from tests.containers.local_aws import function_env, red_circle
from tests.containers.test_lambda_events import MIN_COSINE, assert_same_vectors, cosine, images, texts

KEY = "local-test-api-key"
BACKEND_TIMEOUT_S = "6"  # the hung-container test waits this long; the function's own deadline is shorter still


@pytest.fixture(scope="module")
def api(sam: SamCli, front: tuple[str, Any], moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = function_env(front[0], moto, BACKEND_TIMEOUT_SECONDS=BACKEND_TIMEOUT_S)
    with sam.serving("start-api", env, tmp_path_factory.mktemp("api")) as url:
        yield url


def curl(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(["curl", "-sS", "--max-time", "120", "-w", "\n%{http_code}", *args, url],
                          capture_output=True, text=True, check=True)  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_curl_embeds_a_text_as_the_local_model_does(api: str, tiny: Any) -> None:
    status, body = curl(f"{api}/embed/text", "-H", f"x-api-key: {KEY}", "-H", "Content-Type: application/json",
                        "-d", '{"text": "a red circle"}')  # fmt: skip
    assert status == 200, body
    assert cosine(body["embedding"], texts(tiny, "a red circle")[0]) >= MIN_COSINE


def test_openai_sdk_through_the_stack(api: str, tiny: Any) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{api}/v1", api_key=KEY, timeout=120, max_retries=0)
    answer = client.embeddings.create(model="tiny-shapes", input=["a green triangle", "a blue square"])
    got = [item.embedding for item in answer.data]
    assert_same_vectors(got, texts(tiny, "a green triangle", "a blue square"))
    assert answer.model == "tiny-shapes"


def test_multipart_upload_through_the_stack(api: str, tiny: Any) -> None:
    files = {"file": ("red-circle.png", red_circle(), "image/png")}
    answer = requests.post(f"{api}/embed/image", headers={"x-api-key": KEY}, files=files, timeout=120)
    assert answer.status_code == 200, answer.text
    assert_same_vectors([answer.json()["embedding"]], images(tiny, red_circle()))


def test_a_hung_container_gets_the_functions_own_504_after_one_invoke(
    api: str, endpoint: Running, front: tuple[str, CountingContainer]
) -> None:
    counting = front[1]
    docker("pause", endpoint.container_id)
    try:
        before = counting.count
        status, body = curl(f"{api}/embed/text", "-H", f"x-api-key: {KEY}", "-H", "Content-Type: application/json",
                            "-d", '{"text": "a hung container"}')  # fmt: skip
    finally:
        docker("unpause", endpoint.container_id)
    assert status == 504, body
    assert body["error"]["code"] in {"backend_timeout", "deadline_exceeded"}, body  # ours, not a killed function
    assert counting.count - before == 1  # a read timeout is never retried: the first call may still be running


def test_the_slim_image_serves_the_stack_the_same_vectors(
    api: str, front: tuple[str, CountingContainer], slim_serving_image: str, model_dir: Path, tiny: Any
) -> None:
    """The same API, function and front with the slim image (ONNX Runtime, no torch) as the endpoint's container."""
    counting = front[1]
    with run_as_sagemaker(slim_serving_image, model_dir) as slim, counting.serving(slim.url):
        before = counting.count
        status, body = curl(f"{api}/embed/text", "-H", f"x-api-key: {KEY}", "-H", "Content-Type: application/json",
                            "-d", '{"text": "a red circle"}')  # fmt: skip
        files = {"file": ("red-circle.png", red_circle(), "image/png")}
        answer = requests.post(f"{api}/embed/image", headers={"x-api-key": KEY}, files=files, timeout=120)
        forwarded = counting.count - before
    assert status == 200, body
    assert cosine(body["embedding"], texts(tiny, "a red circle")[0]) >= MIN_COSINE
    assert answer.status_code == 200, answer.text
    assert_same_vectors([answer.json()["embedding"]], images(tiny, red_circle()))
    assert forwarded == 2  # both went through the front to the slim container
