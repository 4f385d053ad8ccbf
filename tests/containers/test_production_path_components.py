"""The production path with EndpointKind components and FallbackMode function: ``sam local start-api`` -> the embed
function -> the SageMaker runtime front as an endpoint of inference components -> our serving container, and
``sam local start-lambda`` -> ModelFunction (the same tiny-shapes archive, torch-free) while the component wakes.

The component starts at 0 copies, as a GPU stack that scaled to zero: the first requests are answered by
ModelFunction inside the function's budget (the "no capacity" answer is never retried, so each costs one
refused invoke at most), the first refusal starts the wake, and once the copy is up the answers come from the
serving image, with the same vectors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containers.sam import SamCli
from containers.serving_image import Running
from local_server.sagemaker_emulation import InferenceComponent
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL, SERVICE_SAGEMAKER
from tests.containers.counting_front import CountingContainer
from tests.containers.local_aws import function_env
from tests.containers.test_lambda_events import MIN_COSINE, cosine, texts
from tests.containers.test_model_function_sam import build_with_model_function
from tests.containers.test_production_path_fallback import embed_text
from tests.serving_stack.runtime_front import RuntimeFront

COMPONENT = "omnisearch-embed-dev-clip"  # the template's name for Stage dev
WAKE_SECONDS = 12.0  # minutes in AWS; long enough here for the first requests to meet 0 copies
BUDGET_S = 29.0  # API Gateway's integration timeout: every answer must come well inside it
COOLDOWN_S = 30.0  # the breaker's default: a waking endpoint is probed again this long after its last refusal


@pytest.fixture(scope="module")
def components_sam(lambda_image: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SamCli:
    work = tmp_path_factory.mktemp("template")
    return build_with_model_function(
        lambda_image, model_dir, work, "model-components-x86_64", EndpointKind="components", FallbackMode="function"
    )


@pytest.fixture(scope="module")
def component(endpoint: Running) -> InferenceComponent:
    return InferenceComponent(CountingContainer(endpoint.url), copies=0, wake_seconds=WAKE_SECONDS)


@pytest.fixture(scope="module")
def components_front(component: InferenceComponent, gateway: str) -> Iterator[str]:
    with RuntimeFront(components={COMPONENT: component}, host=gateway) as runtime:
        yield runtime.url


@pytest.fixture(scope="module")
def api(
    components_sam: SamCli, components_front: str, moto: str, gateway: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": "tiny-shapes"}}
    with components_sam.serving("start-lambda", env, tmp_path_factory.mktemp("lambda"), host=gateway) as lambdas:
        # SAM's emulator leaves a variable whose value is a condition's Fn::If unset: --env-vars gives it, as
        # it gives the others the template declares
        env = function_env(components_front, moto, FALLBACK="function", MODEL_FUNCTION_NAME="ModelFunction",
                           SAGEMAKER_INFERENCE_COMPONENT_NAME=COMPONENT, AWS_ENDPOINT_URL_LAMBDA=lambdas)  # fmt: skip
        with components_sam.serving("start-api", env, tmp_path_factory.mktemp("api")) as url:
            yield url


def test_a_component_at_zero_copies_is_answered_by_the_function_then_by_the_serving_image(
    api: str, component: InferenceComponent, tiny: Any
) -> None:
    text = "a red circle"
    want = texts(tiny, text)[0]
    status, first, took = embed_text(api, text)
    assert status == 200, first
    assert first["service"] == SERVICE_LAMBDA_MODEL, first  # the answering service is named
    assert took < BUDGET_S and component.refused >= 1
    assert cosine(first["embedding"], want) >= MIN_COSINE
    print(f"\ncomponent at 0 copies -> ModelFunction: 200 after {took:.1f} s")

    woken_by = time.monotonic() + WAKE_SECONDS + COOLDOWN_S + 30
    answers: list[tuple[str, float]] = []
    while time.monotonic() < woken_by:
        status, body, took = embed_text(api, text)
        assert status == 200 and took < BUDGET_S, body  # never the caller's wait: the fallback or the copy answers
        answers.append((body["service"], took))
        if body["service"] == SERVICE_SAGEMAKER:
            break
        time.sleep(2)
    assert component.copies == 1
    assert answers and answers[-1][0] == SERVICE_SAGEMAKER, answers  # the first success switched back
    assert cosine(body["embedding"], first["embedding"]) >= MIN_COSINE  # the same model on both paths
    assert cosine(body["embedding"], want) >= MIN_COSINE
    print(f"after the wake ({WAKE_SECONDS:.0f} s): {len(answers)} more requests until the serving image answered")

    status, body, _ = embed_text(api, "a green triangle")
    assert status == 200 and body["service"] == SERVICE_SAGEMAKER, body
