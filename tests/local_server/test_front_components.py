"""The SageMaker runtime front as an endpoint of inference components, over real HTTP and boto3.

The component's container is endpoint_server's, mounted in process over the tiny-shapes model; the front routes
by the ``InferenceComponentName`` boto3 sends, refuses a component at 0 copies as SageMaker does, and wakes it
``wake_seconds`` after the first refusal. SageMakerBackend on top of it sees ``model_waking``, then vectors.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_server.background import serve_in_thread
from local_server.sagemaker_emulation import (
    COMPONENT_REQUIRED,
    NO_CAPACITY,
    InferenceComponent,
    RuntimeFront,
    SageMakerEmulation,
)
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.errors import BackendUnavailableError, ModelWakingError

COMPONENT = "omnisearch-embed-dev-clip"
WAKE_SECONDS = 1.0


@pytest.fixture(scope="module")
def emulation(tiny: Any) -> Iterator[SageMakerEmulation]:
    emulation = SageMakerEmulation(lambda: tiny)
    try:
        yield emulation
    finally:
        emulation.stop()


@contextlib.contextmanager
def front_over(front: RuntimeFront) -> Iterator[Any]:
    with serve_in_thread(front) as url:  # type: ignore[arg-type]
        client = boto3.client(
            "sagemaker-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}),
        )  # fmt: skip
        with contextlib.closing(client):
            yield client


def texts_body(*texts: str) -> bytes:
    return json.dumps({"texts": list(texts)}).encode()


def refusal(client: Any, **names: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="omnisearch-embed-dev", ContentType="application/json",
                               Body=texts_body("a red circle"), **names)  # fmt: skip
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Code"], error["Message"]


def test_a_component_at_zero_copies_refuses_as_sagemaker_then_wakes(emulation: SageMakerEmulation, tiny: Any) -> None:
    component = InferenceComponent(emulation.container, copies=0, wake_seconds=WAKE_SECONDS)
    with front_over(RuntimeFront(components={COMPONENT: component})) as client:
        assert refusal(client, InferenceComponentName=COMPONENT) == ("ValidationError", NO_CAPACITY)
        assert refusal(client, InferenceComponentName=COMPONENT) == ("ValidationError", NO_CAPACITY)
        assert component.refused == 2 and component.copies == 0  # the second refusal did not restart the wake
        time.sleep(WAKE_SECONDS + 0.1)
        answer = client.invoke_endpoint(EndpointName="omnisearch-embed-dev", ContentType="application/json",
                                        Body=texts_body("a red circle"), InferenceComponentName=COMPONENT)  # fmt: skip
        body = json.loads(answer["Body"].read())
    assert component.copies == 1
    assert np.allclose(body["embeddings"], tiny.embed_texts(["a red circle"]).vectors, atol=1e-5)


def test_an_endpoint_of_components_needs_a_known_component_name(emulation: SageMakerEmulation) -> None:
    front = RuntimeFront(components={COMPONENT: InferenceComponent(emulation.container)})
    with front_over(front) as client:
        assert refusal(client) == ("ValidationError", COMPONENT_REQUIRED)
        code, message = refusal(client, InferenceComponentName="another-model")
    assert code == "ValidationError" and "another-model" in message


def test_an_endpoint_without_components_refuses_a_component_name(emulation: SageMakerEmulation) -> None:
    with front_over(RuntimeFront(emulation.container)) as client:
        code, message = refusal(client, InferenceComponentName=COMPONENT)
    assert code == "ValidationError" and COMPONENT in message


def test_a_front_serves_one_container_or_components() -> None:
    with pytest.raises(ValueError, match="not both"):
        RuntimeFront(object(), components={COMPONENT: InferenceComponent(object())})
    with pytest.raises(ValueError):
        RuntimeFront()


def test_the_backend_sees_model_waking_then_the_models_vectors(emulation: SageMakerEmulation, tiny: Any) -> None:
    component = InferenceComponent(emulation.container, copies=0, wake_seconds=WAKE_SECONDS)
    with front_over(RuntimeFront(components={COMPONENT: component})) as client:
        backend = SageMakerBackend("omnisearch-embed-dev", "tiny-shapes", inference_component=COMPONENT, client=client)
        with pytest.raises(ModelWakingError) as waking:
            backend.embed_texts(["a blue square"])
        assert isinstance(waking.value, BackendUnavailableError) and waking.value.status == 503
        assert waking.value.headers() == {"Retry-After": "60"}
        assert component.refused == 1  # one call, never retried inside the budget
        time.sleep(WAKE_SECONDS + 0.1)
        result = backend.embed_texts(["a blue square"])
    assert np.allclose(result.vectors, tiny.embed_texts(["a blue square"]).vectors, atol=1e-5)


def test_scaling_by_hand_sets_the_copies_at_once(emulation: SageMakerEmulation) -> None:
    component = InferenceComponent(emulation.container, copies=0, wake_seconds=3600)
    with front_over(RuntimeFront(components={COMPONENT: component})) as client:
        refusal(client, InferenceComponentName=COMPONENT)  # a wake an hour away
        component.scale_to(1)
        answer = client.invoke_endpoint(EndpointName="omnisearch-embed-dev", ContentType="application/json",
                                        Body=texts_body("a"), InferenceComponentName=COMPONENT)  # fmt: skip
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        component.scale_to(0)
        assert refusal(client, InferenceComponentName=COMPONENT)[1] == NO_CAPACITY
