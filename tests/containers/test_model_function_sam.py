"""ModelFunction under the real SAM CLI: ``sam build`` builds its image, ``sam local invoke`` answers the wire, and
``sam local start-api`` -> the embed function (EndpointKind function) -> ModelFunction, served by ``sam local
start-lambda`` as the Lambda endpoint (``AWS_ENDPOINT_URL_LAMBDA``), answers every event with the local model's
vectors.

The image is built for x86_64 on the Lambda python3.13 equivalent (containers.model_function) from the
tiny-shapes archive. The figures docs/PERFORMANCE.md quotes are printed: image size, the cold start (the
emulator's Init Duration plus the first request) and warm p50s over start-lambda.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from containers import model_function
from containers.engine import ContainerError, docker
from containers.model_function import image_size
from containers.sam import SamCli
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL
from tests.containers.local_aws import EVENTS, function_env, sam_venv
from tests.containers.test_lambda_events import EXPECT, MIN_COSINE, cosine, texts

LAMBDA_INIT_LIMIT_MS = 10_000  # Lambda's init phase: a model that loads slower never serves
WARM_SAMPLES = 20
# Every event the API answers from the model (health says what serves; /metrics needs Lambda's control plane).
# A raw image/png body: sam local start-api decodes every body as UTF-8 and answers 502 itself (its log says
# UnicodeDecodeError) before any function runs; test_lambda_events.py sends that event to the function directly.
EVENTS_THROUGH_THE_API = sorted(set(EXPECT) - {"metrics", "health", "health_deep", "embed_image_raw_png"})


def build_with_model_function(lambda_image: str, model_dir: Path, work: Path, name: str, **parameters: str) -> SamCli:
    """The whole template with ModelFunction (the tiny-shapes archive), built into .aws-sam/``name``."""
    started = time.monotonic()
    cli = model_function.build_with_model_function(sam_venv(), lambda_image, model_dir, work, name,
                                                   ClipModel="tiny-shapes", **parameters)  # fmt: skip
    print(f"\nsam build with ModelFunction ({name}): {time.monotonic() - started:.0f} s")
    return cli


@pytest.fixture(scope="module")
def model_sam(lambda_image: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SamCli:
    """The stack with no endpoint at all: EndpointKind function."""
    work = tmp_path_factory.mktemp("template")
    return build_with_model_function(lambda_image, model_dir, work, "model-function-x86_64", EndpointKind="function")


def wire_event(path: Path, event: dict[str, Any]) -> Path:
    path.write_text(json.dumps(event))
    return path


def vectors(answer: dict[str, Any]) -> list[list[float]]:
    """The model's vectors in the function's answer (output_fn's JSON, as text)."""
    assert answer["contentType"].startswith("application/json") and answer["isBase64Encoded"] is False, answer
    return json.loads(answer["body"])["embeddings"]


def test_sam_build_builds_the_model_function_image(model_sam: SamCli) -> None:
    image = model_sam.image_uris["ModelFunction"]
    assert image, model_sam.image_uris
    size = image_size(image)
    print(f"\nModelFunction image (tiny-shapes, x86_64): {size / 1e6:.0f} MB")
    probe = "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('onnxruntime') is not None)"
    found = docker("run", "--rm", "--entrypoint", "python3", image, "-c", probe).split()
    assert found == ["True", "True"]  # ONNX Runtime and no torch
    assert size < 600e6


def test_sam_local_invoke_answers_the_models_vectors(model_sam: SamCli, tiny: Any, tmp_path: Path) -> None:
    event = wire_event(tmp_path / "wire.json", {"contentType": "application/json", "json": {"texts": ["a red circle"]}})
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": "tiny-shapes"}}
    answer, init_ms, duration_ms, log = model_sam.invoke_raw("ModelFunction", event, env, tmp_path)
    (got,) = vectors(answer)
    assert cosine(got, texts(tiny, "a red circle")[0]) >= MIN_COSINE
    # The emulator starts the runtime at the first invoke: the model's load is in Duration, Init is ~0.
    assert init_ms + duration_ms < LAMBDA_INIT_LIMIT_MS, log[-2000:]
    print(f"\nModelFunction cold start (tiny-shapes, x86_64): init {init_ms:.0f} ms + first request "
          f"{duration_ms:.0f} ms = {init_ms + duration_ms:.0f} ms")  # fmt: skip


def test_another_model_is_refused_at_init(model_sam: SamCli, tmp_path: Path) -> None:
    """An image whose archive is not the endpoint's model fails its init with a ConfigError naming both."""
    event = wire_event(tmp_path / "wire.json", {"contentType": "application/json", "json": {"texts": ["x"]}})
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": "ViT-B-32/openai"}}
    try:
        answer, _, _, log = model_sam.invoke_raw("ModelFunction", event, env, tmp_path)
        said = json.dumps(answer) + log
    except ContainerError as e:
        said = str(e)
    assert "ConfigError" in said and "'ViT-B-32/openai'" in said and "'tiny-shapes'" in said, said[-3000:]
    assert "embeddings" not in said


@pytest.fixture(scope="module")
def lambda_endpoint(model_sam: SamCli, gateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sam local start-lambda`` on the bridge's gateway: the Lambda endpoint the embed function's container calls."""
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": "tiny-shapes"}}
    with model_sam.serving("start-lambda", env, tmp_path_factory.mktemp("lambda"), host=gateway, warm="LAZY") as url:
        yield url


@pytest.fixture(scope="module")
def function_api(
    model_sam: SamCli, lambda_endpoint: str, moto: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``sam local start-api`` with the embed function serving from ModelFunction alone (EndpointKind function)."""
    env = function_env("", moto, USE_SAGEMAKER="false", SAGEMAKER_ENDPOINT_NAME="", ENDPOINT_KIND="function",
                       MODEL_FUNCTION_NAME="ModelFunction", AWS_ENDPOINT_URL_LAMBDA=lambda_endpoint)  # fmt: skip
    with model_sam.serving("start-api", env, tmp_path_factory.mktemp("api"), warm="LAZY") as url:
        yield url


def send(api: str, name: str) -> requests.Response:
    """The API Gateway event ``events/<name>.json`` as the HTTP request it stands for."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    body = event.get("body") or b""
    if body and event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() not in {"host", "content-length"}}
    return requests.request(event["httpMethod"], f"{api}{event['path']}", headers=headers, data=body,
                            params=event.get("queryStringParameters"), timeout=120)  # fmt: skip


def test_health_says_the_model_function_serves(function_api: str) -> None:
    answer = send(function_api, "health")
    assert answer.status_code == 200, answer.text
    backend = answer.json()["backend"]
    assert backend["service"] == SERVICE_LAMBDA_MODEL and backend["function"] == "ModelFunction", backend


@pytest.mark.parametrize("event", EVENTS_THROUGH_THE_API)
def test_event_through_start_api_and_the_model_function(function_api: str, tiny: Any, event: str) -> None:
    answer = send(function_api, event)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if "service" in body:  # the answering service is named: the model function, never SageMaker
        assert body["service"] == SERVICE_LAMBDA_MODEL, body
        body = {**body, "service": "sagemaker"}  # EXPECT's checks name the endpoint's service; the rest is the same
    EXPECT[event](body, tiny)


def test_warm_latency_through_the_api(function_api: str) -> None:
    """Warm p50s of one text and one image, start-api -> embed function -> start-lambda -> ModelFunction."""
    for kind, event in {"text": "embed_text", "image": "embed_image_json"}.items():
        times = []
        for _ in range(WARM_SAMPLES + 1):  # the first one may start a container
            started = time.perf_counter()
            answer = send(function_api, event)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and answer.json()["service"] == SERVICE_LAMBDA_MODEL, answer.text
        print(f"\nwarm {kind} p50 through start-api and ModelFunction (tiny-shapes, x86_64): "
              f"{statistics.median(times[1:]):.1f} ms")  # fmt: skip
