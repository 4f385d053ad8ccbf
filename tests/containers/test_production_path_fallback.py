"""The production path with FallbackMode function: ``sam local start-api`` -> the embed function -> the SageMaker
runtime front -> our serving container, and, while that container hangs, ``sam local start-lambda`` ->
ModelFunction (the same tiny-shapes archive, torch-free) in its Lambda container.

The endpoint's container is paused as an instance that stops answering would be: the caller still gets 200 and
the model's own vectors, from ModelFunction, inside the function's time budget, after one invoke of the paused
endpoint; once the container answers again the next request goes back to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containers.engine import docker
from containers.sam import SamCli
from containers.serving_image import Running
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL, SERVICE_SAGEMAKER
from tests.containers.counting_front import CountingContainer
from tests.containers.local_aws import function_env
from tests.containers.test_lambda_events import MIN_COSINE, cosine, texts
from tests.containers.test_model_function_sam import build_with_model_function
from tests.containers.test_production_path import KEY, curl

BACKEND_TIMEOUT_S = "6"  # the endpoint's read timeout: a hung container costs this, then ModelFunction answers


@pytest.fixture(scope="module")
def fallback_sam(lambda_image: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SamCli:
    """The realtime stack with FallbackMode function (the endpoint, and ModelFunction behind it)."""
    work = tmp_path_factory.mktemp("template")
    return build_with_model_function(lambda_image, model_dir, work, "model-fallback-x86_64", FallbackMode="function")


@pytest.fixture(scope="module")
def lambda_endpoint(fallback_sam: SamCli, gateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": "tiny-shapes"}}
    with fallback_sam.serving("start-lambda", env, tmp_path_factory.mktemp("lambda"), host=gateway) as url:
        yield url


@pytest.fixture(scope="module")
def api(
    fallback_sam: SamCli, front: tuple[str, Any], lambda_endpoint: str, moto: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:  # fmt: skip
    env = function_env(front[0], moto, BACKEND_TIMEOUT_SECONDS=BACKEND_TIMEOUT_S, FALLBACK="function",
                       MODEL_FUNCTION_NAME="ModelFunction", AWS_ENDPOINT_URL_LAMBDA=lambda_endpoint)  # fmt: skip
    with fallback_sam.serving("start-api", env, tmp_path_factory.mktemp("api")) as url:
        yield url


def embed_text(api: str, text: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    status, body = curl(f"{api}/embed/text", "-H", f"x-api-key: {KEY}", "-H", "Content-Type: application/json",
                        "-d", f'{{"text": "{text}"}}')  # fmt: skip
    return status, body, time.monotonic() - started


def test_a_hung_endpoint_is_answered_by_the_model_function_then_the_endpoint_again(
    api: str, endpoint: Running, front: tuple[str, CountingContainer], tiny: Any
) -> None:
    counting = front[1]
    before = counting.count
    status, body, _ = embed_text(api, "a red circle")
    assert status == 200 and body["service"] == SERVICE_SAGEMAKER, body
    assert counting.count - before == 1

    docker("pause", endpoint.container_id)
    try:
        before = counting.count
        status, body, took = embed_text(api, "a blue square")
        forwarded = counting.count - before
    finally:
        docker("unpause", endpoint.container_id)
    assert status == 200, body  # inside the budget: past the function's Timeout, SAM answers 502 itself
    assert body["service"] == SERVICE_LAMBDA_MODEL, body  # the answering service is named
    assert cosine(body["embedding"], texts(tiny, "a blue square")[0]) >= MIN_COSINE
    assert forwarded == 1  # one invoke of the hung endpoint: a read timeout is never retried
    print(f"\nhung endpoint -> ModelFunction: 200 after {took:.1f} s (endpoint read timeout {BACKEND_TIMEOUT_S} s)")

    before = counting.count
    status, body, _ = embed_text(api, "a green triangle")
    assert status == 200 and body["service"] == SERVICE_SAGEMAKER, body  # back on the endpoint once it answers
    assert counting.count - before == 1
    assert cosine(body["embedding"], texts(tiny, "a green triangle")[0]) >= MIN_COSINE
