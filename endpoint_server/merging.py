"""Many requests' items in one model call, and the answer split back per request: the batcher's ``list -> list``.

The serving container (model.ModelRunner over ``predict_fn``) and the local server (BatchedBackend over a
Backend) both merge the requests of one batch, call once, check the row count and slice the rows back.
Their answers are dataclasses with per-item ``vectors``, ``truncated`` and ``tokens`` (inference.Prediction,
omnisearch_embed.Embeddings); everything else in an answer is shared by its requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
PER_ITEM = ("vectors", "truncated", "tokens")  # the answer's fields with one entry per item (None: absent)


class WrongCount(RuntimeError):
    """The merged call answered a different number of rows than it was given items."""

    def __init__(self, got: int, want: int) -> None:
        super().__init__(f"the model returned {got} vectors for {want} items")
        self.got, self.want = got, want


def rows(merged: R, start: int, stop: int, **changes: Any) -> R:
    """Items ``start:stop`` of a merged answer, with ``changes`` to its shared fields."""
    sliced = {name: None if (value := getattr(merged, name)) is None else value[start:stop] for name in PER_ITEM}
    return dataclasses.replace(merged, **sliced, **changes)  # type: ignore[type-var]


def call_merged(
    requests: Sequence[Sequence[T]],
    call: Callable[[list[T]], R],
    *,
    changes: Callable[[R, int], dict[str, Any]] | None = None,
) -> list[R]:
    """``call`` once on every request's items in order; one answer per request (``changes(merged, i)`` applied).

    Raises :class:`WrongCount` when the answer's ``vectors`` do not match the items one for one.
    """
    items = [item for request in requests for item in request]
    merged = call(items)
    if (got := len(merged.vectors)) != len(items):  # type: ignore[attr-defined]
        raise WrongCount(got, len(items))
    out, start = [], 0
    for index, request in enumerate(requests):
        stop = start + len(request)
        out.append(rows(merged, start, stop, **(changes(merged, index) if changes else {})))
        start = stop
    return out
