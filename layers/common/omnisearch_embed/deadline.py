"""One time budget per request: a monotonic deadline that every slow step (S3, each invoke, the fallback) reads.

The handler derives it once from ``context.get_remaining_time_in_millis()`` minus a safety margin, so our own
504 is rendered and returned before Lambda kills the function (which API Gateway would turn into a 502, and
the function-errors alarm into a rollback). It lives in a ``ContextVar``: threads that work for the request
are started with :func:`propagate` so they see it too; code without a deadline (the local model, tests
without a context) sees ``None`` and keeps its own timeouts.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from omnisearch_embed.errors import BackendTimeoutError

T = TypeVar("T")
DEADLINE_EXCEEDED = "deadline_exceeded"
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("omnisearch_deadline", default=None)


def current() -> float | None:
    """The request's deadline on the ``time.monotonic()`` clock, or None when there is none."""
    return _deadline.get()


def remaining(default: float | None = None) -> float | None:
    """Seconds left (may be negative), or ``default`` without a deadline."""
    deadline = _deadline.get()
    return default if deadline is None else deadline - time.monotonic()


def from_lambda_context(context: Any, margin_seconds: float) -> float | None:
    """``now + remaining - margin`` for a Lambda context; None when there is no usable context."""
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if get_remaining is None:
        return None
    try:
        left_ms = float(get_remaining())
    except (TypeError, ValueError):
        return None
    return time.monotonic() + left_ms / 1000.0 - margin_seconds


@contextlib.contextmanager
def scope(deadline: float | None) -> Iterator[float | None]:
    """Run the block under ``deadline``, never later than an enclosing one (a scope only ever narrows)."""
    outer = _deadline.get()
    effective = outer if deadline is None else (deadline if outer is None else min(outer, deadline))
    token = _deadline.set(effective)
    try:
        yield effective
    finally:
        _deadline.reset(token)


def check(what: str) -> None:
    """Raise our 504 when the budget is spent, before starting ``what`` (a step that could not finish)."""
    left = remaining()
    if left is not None and left <= 0:
        raise BackendTimeoutError(
            f"the request ran out of time before {what}; retry, or send a smaller batch", code=DEADLINE_EXCEEDED
        )


def propagate(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's context, for ``pool.submit``: worker threads then see the same deadline."""
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> T:
        return context.copy().run(fn, *args, **kwargs)

    return run
