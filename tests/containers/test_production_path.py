"""The production path on one machine: ``sam local start-api`` -> the embed function in its Lambda container ->
boto3 (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) -> the SageMaker runtime front -> our serving image, run as
SageMaker runs it (``docker run IMAGE serve``, the package_model.py archive read-only at /opt/ml/model, port 8080).

The serving image is built on the DLC stand-in (base_images.dlc_cpu): the DLC itself cannot be pulled here.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from containers.engine import Engine, docker
from containers.sam import SamCli
from containers.serving_image import Running, build_serving_image, run_as_sagemaker
from containers.serving_image import model_dir as unpacked_model
from local_server.sagemaker_emulation import HttpContainer
from tests.containers.local_aws import function_env, red_circle
from tests.containers.test_lambda_events import MIN_COSINE, assert_same_vectors, cosine, images, texts
from tests.serving_stack.runtime_front import RuntimeFront

KEY = "local-test-api-key"
BACKEND_TIMEOUT_S = "6"  # the hung-container test waits this long; the function's own deadline is shorter still


class CountingContainer(HttpContainer):
    """The front's HTTP container, counting the invocations it forwards."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_seconds=60)
        self.count = 0

    async def invoke(self, body: bytes, content_type: str, accept: str) -> Any:
        self.count += 1
        return await super().invoke(body, content_type, accept)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpacked_model(None, tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def serving_image(engine: Engine) -> str:
    from containers.base_images import dlc_cpu

    return build_serving_image(dlc_cpu())


@pytest.fixture(scope="module")
def endpoint(serving_image: str, model_dir: Path) -> Iterator[Running]:
    with run_as_sagemaker(serving_image, model_dir) as running:
        yield running


@pytest.fixture(scope="module")
def front(endpoint: Running, gateway: str) -> Iterator[tuple[str, CountingContainer]]:
    counting = CountingContainer(endpoint.url)
    with RuntimeFront(counting, host=gateway) as runtime:
        yield runtime.url, counting


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


def test_docker_stop_drains_in_flight_invocations(serving_image: str, model_dir: Path) -> None:
    """Invocations in flight when SageMaker's ``docker stop`` comes all answer, and the server exits cleanly.

    The container's CPU is throttled while the invocations arrive, so that they are still running at SIGTERM.
    """
    batch = json.dumps({"texts": [f"a red circle number {i}" for i in range(64)]}).encode()
    statuses: list[int] = []

    def post(url: str) -> None:
        request = urllib.request.Request(f"{url}/invocations", batch, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=90) as answer:
            statuses.append(answer.status)

    with run_as_sagemaker(serving_image, model_dir) as running:
        docker("update", "--cpus", "0.05", running.container_id)
        threads = [threading.Thread(target=post, args=(running.url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        _wait_until_in_flight(running, len(threads))
        stop = threading.Thread(target=docker, args=("stop", "-t", "60", running.container_id), kwargs={"timeout": 90})
        stop.start()
        time.sleep(0.5)  # SIGTERM is in; let the server run at full speed to drain
        docker("update", "--cpus", "2", running.container_id, check=False)
        stop.join(90)
        for thread in threads:
            thread.join(90)
        state = json.loads(docker("inspect", "--format", "{{json .State}}", running.container_id))
    assert statuses == [200, 200, 200]
    assert state["Status"] == "exited" and state["ExitCode"] == 0 and not state["OOMKilled"]


def _wait_until_in_flight(running: Running, count: int) -> None:
    """Until ``count`` connections to the container's port 8080 are open, read from its network namespace."""
    pid = docker("inspect", "--format", "{{.State.Pid}}", running.container_id).strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
        if sum(1 for line in table if line.split()[1].endswith(":1F90") and line.split()[3] == "01") >= count:
            return
        time.sleep(0.02)
    pytest.fail("the invocations never reached the container")
