"""The stack in the runtimes it ships to, on this machine: a Docker engine, the Lambda runtime (equivalent) under
the real SAM CLI, a SageMaker runtime front, moto for S3/CloudWatch/SageMaker's control plane.

These tests start containers (minutes on a fresh machine): they run when CONTAINER_TESTS=1 (``make
test-containers``), and skip otherwise. Everything started here is stopped by its PID or container id.

``serving_image`` is each of our two serving images in turn: ``dlc`` (endpoint_server/Dockerfile on the DLC
stand-in) and ``slim`` (endpoint_server/Dockerfile.cpu on the python:3.12-slim equivalent); each is built once
per session, and tests that take it run once per image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from containers.engine import ContainerError, Engine, bridge_gateway, docker
from containers.sam import SamCli
from containers.serving_image import SLIM_DOCKERFILE, SLIM_TAG, Running, build_serving_image, run_as_sagemaker
from containers.serving_image import model_dir as unpacked_model
from tests.containers.counting_front import CountingContainer
from tests.containers.local_aws import AWS, BUCKET, ENDPOINT, red_circle, sam_venv
from tests.containers.shell_image import import_shell_image
from tests.serving_stack.runtime_front import RuntimeFront


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CONTAINER_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="container tests run with CONTAINER_TESTS=1 (make test-containers)")
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    try:
        with Engine(tmp_path_factory.mktemp("dockerd")) as running:
            yield running
    except ContainerError as e:
        pytest.fail(str(e))


@pytest.fixture
def shell_image(engine: Engine) -> Iterator[Callable[..., str]]:
    """Makes few-kilobyte images holding only /bin/sh (``import_shell_image``); each is removed by its id."""
    made: list[str] = []

    def make(tag: str, changes: tuple[str, ...] = ()) -> str:
        made.append(import_shell_image(tag, changes))
        return made[-1]

    yield make
    if made:
        docker("image", "rm", "--force", *made, check=False)


@pytest.fixture(scope="session")
def gateway(engine: Engine) -> str:
    return bridge_gateway()


@pytest.fixture(scope="session")
def lambda_image(engine: Engine) -> str:
    from containers.base_images import lambda_runtime

    return lambda_runtime("x86_64")


@pytest.fixture(scope="session")
def dlc_serving_image(engine: Engine) -> str:
    from containers.base_images import dlc_cpu

    return build_serving_image(dlc_cpu())


@pytest.fixture(scope="session")
def slim_serving_image(engine: Engine) -> str:
    from containers.base_images import python_slim

    return build_serving_image(python_slim(), SLIM_TAG, SLIM_DOCKERFILE)


@pytest.fixture(scope="session", params=["dlc", "slim"])
def serving_image(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_serving_image"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-shapes archive (with its ONNX towers), unpacked as SageMaker unpacks it."""
    return unpacked_model(None, tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def sam(lambda_image: str) -> SamCli:
    cli = SamCli(sam_venv(), "x86_64", lambda_image)
    cli.build()
    return cli


@pytest.fixture(scope="session")
def tiny() -> Any:
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture(scope="session")
def emulation(gateway: str, tiny: Any) -> Iterator[str]:
    """The SageMaker runtime front over the container mounted in process (tiny-shapes), on the bridge."""
    from local_server.background import serve_in_thread
    from local_server.sagemaker_emulation import SageMakerEmulation

    front = SageMakerEmulation(lambda: tiny)
    try:
        with serve_in_thread(front, host=gateway) as url:  # type: ignore[arg-type]
            yield url
    finally:
        front.stop()


@pytest.fixture(scope="session")
def moto(gateway: str) -> Iterator[str]:
    """S3 (the events' bucket and picture), CloudWatch and SageMaker's control plane (the endpoint)."""
    from moto.server import ThreadedMotoServer

    from tests.aws_moto import create_endpoint

    server = ThreadedMotoServer(ip_address=gateway, port=0, verbose=False)
    server.start()
    try:
        url = f"http://{gateway}:{server._server.server_port}"
        create_endpoint(boto3.client("sagemaker", endpoint_url=url, **AWS), ENDPOINT)
        s3 = boto3.client("s3", endpoint_url=url, **AWS)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="shapes/red-circle.png", Body=red_circle())
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def endpoint(dlc_serving_image: str, model_dir: Path) -> Iterator[Running]:
    """Our serving image (DLC-based) run as SageMaker runs it, one per test module."""
    with run_as_sagemaker(dlc_serving_image, model_dir) as running:
        yield running


@pytest.fixture(scope="module")
def front(endpoint: Running, gateway: str) -> Iterator[tuple[str, CountingContainer]]:
    """The SageMaker runtime front on the bridge over ``endpoint``: its URL, and what it counts."""
    counting = CountingContainer(endpoint.url)
    with RuntimeFront(counting, host=gateway) as runtime:
        yield runtime.url, counting
