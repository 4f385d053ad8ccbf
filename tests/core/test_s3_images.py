"""S3 images through moto: the allow list, missing keys, size checks before reading, batch budgets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from omnisearch_embed.errors import EmbedError
from omnisearch_embed.s3_images import S3ImageFetcher, parse_s3_uri
from omnisearch_embed.settings import Settings
from omnisearch_testkit.images import image_bytes

BUCKET = "omnisearch-test-images"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.create_bucket(Bucket="someone-elses-bucket")
        yield client


def fetcher(s3: Any, **limits: Any) -> S3ImageFetcher:
    return S3ImageFetcher(Settings(allowed_s3_buckets=(BUCKET,), **limits), s3_client=s3)


def refused(call, *args, **kwargs) -> EmbedError:
    with pytest.raises(EmbedError) as info:
        call(*args, **kwargs)
    return info.value


def test_parse() -> None:
    assert parse_s3_uri("s3://my.bucket-1/a/b c.png") == ("my.bucket-1", "a/b c.png")
    for bad in ("s3://", "s3://bucket", "s3://bucket/", "s3://Bad_Bucket/k", "https://bucket/k"):
        assert refused(parse_s3_uri, bad).code == "invalid_s3_uri"


def test_fetch_returns_the_object_bytes(s3: Any) -> None:
    data = image_bytes("PNG")
    s3.put_object(Bucket=BUCKET, Key="shapes/a.png", Body=data)
    assert fetcher(s3).fetch(f"s3://{BUCKET}/shapes/a.png") == data


def test_bucket_off_the_list_is_403_without_calling_s3(s3: Any) -> None:
    s3.put_object(Bucket="someone-elses-bucket", Key="a.png", Body=image_bytes("PNG"))

    class NoCalls:
        def get_object(self, **kwargs: Any) -> None:
            raise AssertionError("S3 must not be called for a bucket off the list")

    limited = S3ImageFetcher(Settings(allowed_s3_buckets=(BUCKET,)), s3_client=NoCalls())
    error = refused(limited.fetch, "s3://someone-elses-bucket/a.png")
    assert (error.status, error.code) == (403, "s3_bucket_not_allowed")


def test_missing_key_is_404(s3: Any) -> None:
    error = refused(fetcher(s3).fetch, f"s3://{BUCKET}/nope.png")
    assert (error.status, error.code) == (404, "s3_object_not_found")


def test_allowed_but_missing_bucket_is_404() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        error = refused(fetcher(client).fetch, f"s3://{BUCKET}/a.png")
    assert (error.status, error.code) == (404, "s3_bucket_not_found")


def test_content_length_over_the_limit_is_413_before_reading(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_object(Bucket=BUCKET, Key="big.png", Body=b"\0" * 5000)
    from botocore.response import StreamingBody

    def no_read(self: StreamingBody, amt: int | None = None) -> bytes:
        raise AssertionError("the body of an oversized object must not be read")

    monkeypatch.setattr(StreamingBody, "read", no_read)
    error = refused(fetcher(s3, max_image_bytes=4096).fetch, f"s3://{BUCKET}/big.png")
    assert (error.status, error.code) == (413, "image_too_large")


def test_fetch_many_keeps_order_and_authorises_all_first(s3: Any) -> None:
    blobs = [image_bytes("PNG", colour=(i * 40, 0, 0)) for i in range(5)]
    for i, blob in enumerate(blobs):
        s3.put_object(Bucket=BUCKET, Key=f"k{i}.png", Body=blob)
    uris = [f"s3://{BUCKET}/k{i}.png" for i in range(5)]
    assert fetcher(s3).fetch_many(uris, total_limit=1 << 20, param="images") == blobs
    error = refused(fetcher(s3).fetch_many, [*uris, "s3://someone-elses-bucket/x.png"], total_limit=1 << 20)
    assert error.code == "s3_bucket_not_allowed"


def test_fetch_many_shares_one_byte_budget(s3: Any) -> None:
    for i in range(4):
        s3.put_object(Bucket=BUCKET, Key=f"b{i}.bin", Body=b"\1" * 1000)
    uris = [f"s3://{BUCKET}/b{i}.bin" for i in range(4)]
    assert len(fetcher(s3).fetch_many(uris, total_limit=4000)) == 4
    error = refused(fetcher(s3).fetch_many, uris, total_limit=3500, param="images")
    assert (error.status, error.code) == (413, "s3_batch_too_large")


def test_default_client_is_created_lazily_in_the_configured_region() -> None:
    with mock_aws():
        lazy = S3ImageFetcher(Settings(allowed_s3_buckets=(BUCKET,), aws_region="eu-west-1"))
        assert lazy._client is None
        assert lazy.client.meta.region_name == "eu-west-1"
