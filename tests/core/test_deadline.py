"""The request's deadline: derived from a Lambda context, only ever narrowed, seen by worker threads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_server.lambda_context import LambdaContext
from omnisearch_embed import deadline
from omnisearch_embed.errors import BackendTimeoutError


def test_from_a_lambda_context_minus_the_margin() -> None:
    context = LambdaContext(timeout_seconds=29.0)
    at = deadline.from_lambda_context(context, margin_seconds=1.5)
    since = time.monotonic() - context.started  # bounds the time between reading the clock and the context
    assert at is not None and context.ends_at - 1.5 - 0.001 <= at <= context.ends_at - 1.5 + since


@pytest.mark.parametrize("context", [None, object(), "not a context"])
def test_no_usable_context_means_no_deadline(context: object) -> None:
    assert deadline.from_lambda_context(context, margin_seconds=1) is None


def test_scopes_only_narrow_and_are_undone() -> None:
    assert deadline.current() is None and deadline.remaining(7.0) == 7.0
    now = time.monotonic()
    with deadline.scope(now + 10):
        with deadline.scope(now + 20) as inner:  # a later deadline cannot extend the request's
            assert inner == now + 10
        with deadline.scope(now + 5):
            assert deadline.current() == now + 5
        with deadline.scope(None):
            assert deadline.current() == now + 10
    assert deadline.current() is None


def test_check_raises_our_504_once_the_budget_is_spent() -> None:
    with deadline.scope(time.monotonic() + 60):
        deadline.check("anything")
    with deadline.scope(time.monotonic() - 0.001), pytest.raises(BackendTimeoutError) as info:
        deadline.check("the second chunk")
    assert (info.value.status, info.value.code) == (504, "deadline_exceeded")
    assert "the second chunk" in info.value.message


def test_worker_threads_see_the_callers_deadline_only_when_propagated() -> None:
    at = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=1) as pool, deadline.scope(at):
        assert pool.submit(deadline.current).result() is None  # a plain worker thread has its own context
        assert pool.submit(deadline.propagate(deadline.current)).result() == at
