"""Both serving images under SageMaker's contract, each run as SageMaker runs it over the tiny-shapes archive:
``dlc`` (endpoint_server/Dockerfile on the DLC stand-in) and ``slim`` (endpoint_server/Dockerfile.cpu on the
python:3.12-slim equivalent: ONNX Runtime, no torch). Then what only the slim image promises: its size, no torch,
and an archive without its ONNX files named as the fix at start, not found out at the first request.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containers.engine import container_logs, docker, run_once
from containers.serving_image import Running, run_as_sagemaker
from containers.serving_image import model_dir as unpacked_model
from tests.containers.local_aws import red_circle
from tests.containers.test_lambda_events import assert_same_vectors, images, texts

SLIM_MAX_BYTES = 500 * 1000**2  # the slim image without the model (docker's MB)
FIX = "package_model.py without --no-onnx"
# Exit status 1 when torch or open_clip could be imported in the image.
NO_TORCH = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'open_clip')))"


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def ping(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def endpoint(serving_image: str, model_dir: Path) -> Iterator[Running]:
    with run_as_sagemaker(serving_image, model_dir) as running:
        yield running


def test_ping_answers_healthy(endpoint: Running) -> None:
    status, body = ping(endpoint.url)
    assert status == 200 and body["status"] == "Healthy", body


def test_texts_and_images_get_the_models_vectors(endpoint: Running, tiny: Any) -> None:
    status, body = post(endpoint.url, json.dumps({"texts": ["a red circle", "a blue star"]}).encode())
    assert status == 200, body
    assert_same_vectors(body["embeddings"], texts(tiny, "a red circle", "a blue star"))
    picture = base64.b64encode(red_circle()).decode()
    status, body = post(endpoint.url, json.dumps({"images": [picture]}).encode())
    assert status == 200, body
    assert_same_vectors(body["embeddings"], images(tiny, red_circle()))


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        pytest.param(b'{"texts": ["unclosed"', "application/json", 400, "invalid_json", id="bad-json"),
        pytest.param(
            json.dumps({"images": [base64.b64encode(b"not a picture").decode()]}).encode(),
            "application/json",
            422,
            "invalid_image",
            id="unreadable-image",
        ),
        pytest.param(b"%PDF-1.7", "application/pdf", 415, "unsupported_media_type", id="media-type"),
    ],
)
def test_a_bad_body_gets_its_4xx_and_code(
    endpoint: Running, body: bytes, content_type: str, status: int, code: str
) -> None:
    got, answer = post(endpoint.url, body, content_type)
    assert (got, answer["code"]) == (status, code), answer


def test_docker_stop_drains_in_flight_invocations(serving_image: str, model_dir: Path) -> None:
    """Invocations in flight when SageMaker's ``docker stop`` comes all answer, and the server exits cleanly.

    The container's CPU is throttled while the invocations arrive, so that they are still running at SIGTERM.
    """
    batch = json.dumps({"texts": [f"a red circle number {i}" for i in range(64)]}).encode()
    statuses: list[int] = []

    def send(url: str) -> None:
        request = urllib.request.Request(f"{url}/invocations", batch, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=90) as answer:
            statuses.append(answer.status)

    with run_as_sagemaker(serving_image, model_dir) as running:
        docker("update", "--cpus", "0.05", running.container_id)
        threads = [threading.Thread(target=send, args=(running.url,)) for _ in range(3)]
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
    """Until the server has read ``count`` requests on port 8080, as its network namespace's TCP table shows them.

    An open connection is not yet an invocation: one still in the listen backlog (no socket inode: not accepted)
    or whose request is still queued (receive queue not empty) is closed unanswered when the server stops. The
    table must say so for 0.2 s running, longer than a request takes to arrive through docker's proxy.
    """
    pid = docker("inspect", "--format", "{{.State.Pid}}", running.container_id).strip()
    deadline, since = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        rows = [line.split() for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]]
        read = [row for row in rows if row[1].endswith(":1F90") and row[3] == "01" and row[9] != "0"
                and int(row[4].split(":")[1], 16) == 0]  # fmt: skip
        since = (since or time.monotonic()) if len(read) >= count else None
        if since is not None and time.monotonic() - since >= 0.2:
            return
        time.sleep(0.02)
    pytest.fail("the invocations never reached the server")


def test_the_slim_image_is_at_most_500_mb_without_the_model(slim_serving_image: str) -> None:
    size = int(docker("image", "inspect", "--format", "{{.Size}}", slim_serving_image).strip())
    assert size <= SLIM_MAX_BYTES, f"{slim_serving_image} is {size / 1000**2:.0f} MB"


def test_torch_is_in_the_dlc_image_only(slim_serving_image: str, dlc_serving_image: str) -> None:
    """The probe itself is checked on the DLC-based image, where torch and open_clip are found."""
    slim = run_once(slim_serving_image, ["-c", NO_TORCH], ["--entrypoint", "python"])
    dlc = run_once(dlc_serving_image, ["-c", NO_TORCH], ["--entrypoint", "python"])
    assert slim[0] == 0, slim[1]
    assert dlc[0] == 1, dlc[1]


@pytest.fixture(scope="module")
def no_onnx_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-shapes packaged with ``--no-onnx``: weights only, which the slim image cannot serve."""
    return unpacked_model(None, tmp_path_factory.mktemp("no-onnx"), onnx=False)


def _logs_naming_the_fix(container: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while FIX not in (logs := container_logs(container)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return logs


def test_an_archive_without_onnx_files_names_the_fix_and_stops_the_container(
    slim_serving_image: str, no_onnx_model_dir: Path
) -> None:
    """SageMaker replaces a container that exits; one that stayed up answering /ping 503 would be polled until
    its health check gave up. So the logs name package_model.py and the container exits non-zero."""
    with run_as_sagemaker(slim_serving_image, no_onnx_model_dir, stop_grace=1, healthy=False) as running:
        assert FIX in _logs_naming_the_fix(running.container_id)
        deadline = time.monotonic() + 15
        while (status := docker("inspect", "--format", "{{.State.Status}}", running.container_id).strip()) == "running":
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        code = int(docker("inspect", "--format", "{{.State.ExitCode}}", running.container_id).strip())
    assert status == "exited" and code != 0, (status, code)
