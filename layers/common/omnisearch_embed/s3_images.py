"""Images by ``s3://bucket/key``, only from the buckets in ``ALLOWED_S3_BUCKETS``.

The allow list is checked before any call to AWS, the object's ``ContentLength`` before its body is
read, and a batch shares one byte budget (``MAX_S3_BATCH_BYTES``) so 256 URIs cannot pull gigabytes into a
Lambda. Every read runs under the request's deadline, with the same retry policy as the endpoint. The S3
client is injected (tests pass a moto-backed one) or created on first use, so text-only cold starts
never import boto3. There is deliberately no http(s) fetcher anywhere in this package.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from omnisearch_embed import deadline
from omnisearch_embed.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ThrottledError,
)
from omnisearch_embed.settings import Settings

logger = logging.getLogger(__name__)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}


def _is_key(key: str) -> bool:
    """S3 keys are 1 to 1,024 bytes of UTF-8 (so a lone surrogate, which has no UTF-8, is no key)."""
    try:
        return 0 < len(key.encode("utf-8")) <= 1024
    except UnicodeEncodeError:
        return False


def parse_s3_uri(uri: str, *, param: str | None = None) -> tuple[str, str]:
    """``s3://bucket/some/key.png`` -> ``("bucket", "some/key.png")``; anything else is a 400."""
    bucket, _, key = uri[5:].partition("/") if uri[:5].lower() == "s3://" else ("", "", "")
    if not _BUCKET.match(bucket) or not _is_key(key):
        raise InvalidInputError(f"{uri[:200]!r} is not an s3://bucket/key URI", code="invalid_s3_uri", param=param)
    return bucket, key


class _Budget:
    """Bytes a whole request may still pull from S3, shared by the fetching threads."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.limit = limit
        self._lock = threading.Lock()

    def take(self, size: int, param: str | None) -> None:
        with self._lock:
            if size > self.left:
                raise PayloadTooLargeError(
                    f"the S3 images of this request add up to more than {self.limit} bytes (MAX_S3_BATCH_BYTES)",
                    code="s3_batch_too_large",
                    param=param,
                )
            self.left -= size


class S3ImageFetcher:
    """Reads image objects from allowed buckets and maps S3 failures to API errors."""

    def __init__(self, settings: Settings, s3_client: Any | None = None, *, max_workers: int = 8) -> None:
        self.settings = settings
        self.allowed = frozenset(settings.allowed_s3_buckets)
        self.max_workers = max_workers
        self._client = s3_client
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import boto3

                    from omnisearch_embed.backends import retries

                    config = retries.client_config(connect_timeout=2, read_timeout=5, max_attempts=3)
                    client = boto3.client("s3", region_name=self.settings.aws_region, config=config)
                    self._client = retries.install(client)
        return self._client

    def check_allowed(self, uri: str, *, param: str | None = None) -> tuple[str, str]:
        """Parse and authorise without touching AWS: a bucket off the list is a 403."""
        bucket, key = parse_s3_uri(uri, param=param)
        if bucket not in self.allowed:
            raise ForbiddenError(
                f"bucket {bucket!r} is not in ALLOWED_S3_BUCKETS", code="s3_bucket_not_allowed", param=param
            )
        return bucket, key

    def fetch(self, uri: str, *, param: str | None = None, budget: _Budget | None = None) -> bytes:
        """The object's bytes, refusing anything over ``max_image_bytes`` before reading its body."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        bucket, key = self.check_allowed(uri, param=param)
        limit = self.settings.max_image_bytes
        deadline.check(f"{uri} was read")
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                size = int(response.get("ContentLength") or 0)
                if size > limit:
                    raise PayloadTooLargeError(
                        f"{uri} is {size} bytes, over the {limit}-byte image limit", code="image_too_large", param=param
                    )
                if budget is not None and size:
                    budget.take(size, param)
                data = body.read(limit + 1)
                if budget is not None and not size:  # no ContentLength: count what was read
                    budget.take(len(data), param)
            finally:
                body.close()
        except ClientError as e:
            raise _client_error(e, uri, param) from e
        except (ReadTimeoutError, ConnectTimeoutError) as e:
            raise BackendTimeoutError(f"S3 did not answer in time for {uri}", code="s3_timeout") from e
        except BotoCoreError as e:
            raise BackendUnavailableError(f"S3 could not be reached for {uri}", code="s3_unavailable") from e
        if len(data) > limit:
            raise PayloadTooLargeError(
                f"{uri} is over the {limit}-byte image limit", code="image_too_large", param=param
            )
        return data

    def fetch_many(
        self,
        uris: Sequence[str],
        *,
        total_limit: int,
        param: str | None = None,
        names: Sequence[str | None] | None = None,
    ) -> list[bytes]:
        """Fetch in parallel (order kept); every URI is authorised before the first download starts.

        Errors name URI ``i`` as ``names[i]`` (its place in the caller's list), else ``param[i]``.
        """
        where = list(names) if names is not None else [_item(param, i, len(uris)) for i in range(len(uris))]
        for uri, name in zip(uris, where, strict=True):
            self.check_allowed(uri, param=name)
        budget = _Budget(total_limit)
        if len(uris) <= 1:
            return [self.fetch(uri, param=name, budget=budget) for uri, name in zip(uris, where, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(uris))) as pool:
            futures = [
                pool.submit(deadline.propagate(self.fetch), uri, param=name, budget=budget)
                for uri, name in zip(uris, where, strict=True)
            ]
            return [f.result() for f in futures]


def _item(param: str | None, index: int, count: int) -> str | None:
    return f"{param}[{index}]" if param and count > 1 else param


def _client_error(e: Any, uri: str, param: str | None) -> Exception:
    code = str(e.response.get("Error", {}).get("Code", ""))
    # AWS's text names the account and the role; it goes to the log, the caller gets the code.
    logger.warning("S3 answered %s for %s: %s", code or "an error", uri, e.response.get("Error", {}).get("Message"))
    if code in _NOT_FOUND:
        return NotFoundError(f"{uri} does not exist", code="s3_object_not_found", param=param)
    if code == "NoSuchBucket":
        return NotFoundError(f"the bucket of {uri} does not exist", code="s3_bucket_not_found", param=param)
    if code in _DENIED:
        return ForbiddenError(f"this service may not read {uri}", code="s3_access_denied", param=param)
    if code in _THROTTLED:
        return ThrottledError("S3 is throttling reads; retry with backoff", code="s3_throttled")
    return BackendUnavailableError(f"S3 refused to read {uri} ({code or 'unknown error'})", code="s3_error")
