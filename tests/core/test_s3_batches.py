"""S3-referenced batches past Lambda's 6 MiB: fetched under their own budget, split across invokes, in order."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.errors import ConfigError, EmbedError
from omnisearch_embed.s3_images import S3ImageFetcher
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, SAGEMAKER_MAX_PAYLOAD_BYTES, Settings
from omnisearch_testkit.sagemaker_stubs import container_server, item_vector, runtime_client

BUCKET = "omnisearch-batch-images"
MODEL = "ViT-B-32/openai"


def noise_png(seed: int, side: int = 600) -> bytes:
    """About 1 MiB: random pixels do not compress."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [noise_png(seed) for seed in range(8)]


@pytest.fixture
def s3(images: list[bytes]) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for i, data in enumerate(images):
            client.put_object(Bucket=BUCKET, Key=f"noise/{i}.png", Body=data)
        yield client


def service(s3: Any, url: str, **limits: Any) -> EmbedService:
    settings = Settings(allowed_s3_buckets=(BUCKET,), **limits)
    backend = SageMakerBackend("omnisearch-embed-test", MODEL, client=runtime_client(endpoint_url=url))
    return EmbedService(backend, settings, s3=S3ImageFetcher(settings, s3_client=s3))


def test_s3_images_past_six_mib_are_split_across_invokes_in_order(s3: Any, images: list[bytes]) -> None:
    assert sum(map(len, images)) > LAMBDA_MAX_EVENT_BYTES
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    with container_server(MODEL) as server:
        result = service(s3, server.url).embed_image_refs([f"s3://{BUCKET}/noise/{i}.png" for i in order])
    assert result.vectors == [item_vector(images[i]) for i in order]
    assert len(server.bodies) >= 2 and all(len(body) <= SAGEMAKER_MAX_PAYLOAD_BYTES for body in server.bodies)


def test_their_own_budget_still_bounds_memory(s3: Any) -> None:
    with container_server(MODEL) as server:
        with pytest.raises(EmbedError) as info:
            service(s3, server.url, max_s3_batch_bytes=3 << 20).embed_image_refs(
                [f"s3://{BUCKET}/noise/{i}.png" for i in range(8)]
            )
        assert server.bodies == []
    assert (info.value.status, info.value.code) == (413, "s3_batch_too_large")


def test_the_budget_is_a_setting_checked_against_the_functions_memory() -> None:
    assert Settings.from_env({"MAX_S3_BATCH_BYTES": str(32 << 20)}).max_s3_batch_bytes == 32 << 20
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}).max_s3_batch_bytes == 64 << 20
    with pytest.raises(ConfigError, match="MAX_S3_BATCH_BYTES"):
        Settings.from_env({"MAX_S3_BATCH_BYTES": str(512 << 20), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"})
