"""botocore retries that respect the request's deadline and never resend a request that may still be running.

botocore's ``standard`` and ``adaptive`` modes also retry read timeouts, dropped connections and 5xx answers
(``TransientRetryableChecker``). For an inference endpoint that is the wrong call: a read timeout usually
means the invoke is queued behind others and still running, so a resend doubles the load exactly when the
endpoint is overloaded. :func:`install` keeps botocore's own machinery (``RetryHandler``, its retry quota and
exponential backoff) and swaps only the checker: it retries throttling and failures to *connect* (the request
never reached the endpoint), and only while the deadline leaves an attempt time to run. It also gives every
attempt a read timeout equal to what the deadline leaves (botocore's per-request ``read_timeout`` context
override), so one slow answer uses the remaining budget once instead of a fixed slice of it.

``adaptive`` mode is not used: its client-side rate limiter may sleep before a send for longer than any
deadline allows.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries import quota, standard

from omnisearch_embed import deadline

MIN_ATTEMPT_SECONDS = 0.5  # an attempt with less time than this left is not started
_EXTRA_THROTTLING_CODES = ("ModelNotReadyException",)  # SageMaker's 429 while a model loads; modeled, not marked


def client_config(*, connect_timeout: float, read_timeout: float, max_attempts: int, pool: int = 10) -> Config:
    """A client config for :func:`install`: ``read_timeout`` applies only to calls made without a deadline."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # "max_attempts" would count retries only
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=pool,
    )


class _RetryConditions(standard.BaseRetryableChecker):
    """Under max attempts, with time left, and a throttle or a failure to connect; nothing else."""

    def __init__(self, max_attempts: int, throttling: standard.ThrottlingErrorDetector, min_attempt: float) -> None:
        self._max_attempts = standard.MaxAttemptsChecker(max_attempts)
        self._throttling = throttling
        self._extra_throttling = standard.ThrottledRetryableChecker(list(_EXTRA_THROTTLING_CODES))
        # ConnectionError covers EndpointConnectionError and ConnectTimeoutError, never a read timeout.
        self._connect_failure = standard.TransientRetryableChecker(
            transient_error_codes=[], transient_status_codes=[], transient_exception_cls=(BotoConnectionError,)
        )
        self._min_attempt = min_attempt

    def is_retryable(self, context: standard.RetryContext) -> bool:
        left = deadline.remaining()
        if left is not None and left < self._min_attempt:
            return False
        retryable = (
            self._throttling.is_throttling_error_from_context(context)
            or self._extra_throttling.is_retryable(context)
            or self._connect_failure.is_retryable(context)
        )
        return retryable and self._max_attempts.is_retryable(context)


class _DeadlineBackoff(standard.BaseRetryBackoff):
    """botocore's exponential backoff, cut so that the next attempt still starts with time to run."""

    def __init__(self, inner: standard.ExponentialBackoff, min_attempt: float) -> None:
        self._inner = inner
        self._min_attempt = min_attempt

    def delay_amount(self, context: standard.RetryContext) -> float:
        delay = self._inner.delay_amount(context)
        left = deadline.remaining()
        return delay if left is None else max(0.0, min(delay, left - self._min_attempt))


def install(client: Any, *, min_attempt_seconds: float = MIN_ATTEMPT_SECONDS) -> Any:
    """Give ``client`` (built with ``mode: standard``) the deadline-aware retry policy; returns the client."""
    service = client.meta.service_model.service_id.hyphenize()
    config = client.meta.config
    max_attempts = int(config.retries.get("total_max_attempts") or standard.DEFAULT_MAX_ATTEMPTS)
    adapter = standard.RetryEventAdapter()
    throttling = standard.ThrottlingErrorDetector(adapter)
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota(), throttling)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=_RetryConditions(max_attempts, throttling, min_attempt_seconds),
            retry_backoff=_DeadlineBackoff(
                standard.ExponentialBackoff(service_name=service, throttling_detector=throttling), min_attempt_seconds
            ),
        ),
        retry_event_adapter=adapter,
        retry_quota=retry_quota,
        service_name=service,
    )
    _hook_into_botocore(client, handler, retry_quota, connect_timeout=float(config.connect_timeout))
    return client


def _hook_into_botocore(
    client: Any, handler: standard.RetryHandler, retry_quota: standard.RetryQuotaChecker, *, connect_timeout: float
) -> None:
    """The two uses of botocore internals, kept here: the retry handler's event id and the per-attempt read timeout.

    botocore registers its standard handler under ``retry-config-<service>``; and since 1.44 its HTTP session reads
    ``request.context["read_timeout"]`` as the attempt's read timeout (earlier versions ignore the key, and reads
    would then last the client's full ``read_timeout``). tests/core/test_retries.py calls a hanging server through
    a real client to catch either change.
    """
    service = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events
    unique_id = f"retry-config-{service}"
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    events.register(f"after-call.{service}", retry_quota.release_retry_quota)

    def read_timeout_from_deadline(request: Any, **_: Any) -> None:
        left = deadline.remaining()
        if left is not None:  # connecting may take its own timeout; the read gets the rest, never less than 10 ms
            request.context["read_timeout"] = max(0.01, left - connect_timeout)

    events.register(f"request-created.{service}", read_timeout_from_deadline, unique_id=f"deadline-read-{service}")
