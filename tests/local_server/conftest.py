"""Servers on ephemeral ports (uvicorn in a background thread), all serving the bundled tiny-shapes model.

``server``: the default local server (tiny-shapes, dynamic batching over a gated, counting backend).
``cloud_server``: a second server whose backend is SageMakerBackend pointed at ``server``'s runtime
emulation, built the way ``USE_SAGEMAKER=true AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=...`` builds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_server.batched_backend import BatchedBackend
from omnisearch_embed.settings import Settings
from tests.local_server.serving import GatedBackend, MainServer, Running, serving


@pytest.fixture(scope="session")
def tiny() -> Any:
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture(scope="session")
def server(tiny: Any) -> Iterator[MainServer]:
    gated = GatedBackend(tiny)
    batcher = BatchedBackend(gated, max_batch_size=32, max_wait_ms=5)
    try:
        with serving(batcher, Settings(), local_model=lambda: tiny) as running:
            yield MainServer(running.url, running.server, gated, batcher)
    finally:
        batcher.close()


@pytest.fixture(scope="module")
def runtime(server: MainServer) -> Iterator[Any]:
    """boto3's sagemaker-runtime client pointed at ``server``'s emulation, without retries."""
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    yield client
    client.close()  # its pooled sockets would otherwise be collected (ResourceWarning) in a later test


@pytest.fixture(scope="session")
def cloud_server(server: MainServer, tiny: Any) -> Iterator[Running]:
    """USE_SAGEMAKER=true with the SageMaker runtime endpoint URL pointing at ``server``'s emulation."""
    from omnisearch_embed.backends.factory import backend_from_settings

    env = {
        "USE_SAGEMAKER": "true",
        "SAGEMAKER_ENDPOINT_NAME": "local",
        "CLIP_MODEL": "tiny-shapes",
        "AWS_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }.items():
            mp.setenv(name, value)
        settings = Settings.from_env(env)
        backend = backend_from_settings(settings, local_factory=lambda: tiny)
        with serving(backend, settings, local_model=lambda: tiny) as running:
            yield running
