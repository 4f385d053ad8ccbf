"""What every engine shares: one batch in, one answer per item out, a bad item isolated from its batch.

An engine embeds a batch through one call. When the call is refused for something in the input (an
unreadable image, a text the API will not take: a 4xx other than 429), each item is retried alone, so the
bad one gets its own error and the rest their vectors. Anything else (the service down after its retries,
the model failing) stops the run: what is done is kept, and a re-run resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from omnisearch_embed.errors import EmbedError, ThrottledError


class EngineError(RuntimeError):
    """The engine cannot go on (service down after its retries, a wrong key or URL): the run stops, resumably."""


class ItemRejected(Exception):
    """The service refused this input (the caller's fault): ``code`` and ``message`` go to the errors file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Answer:
    """One call's vectors (count x dimension float32), with per-text truncation flags."""

    model: str
    vectors: np.ndarray
    truncated: list[bool] | None = None


@dataclass
class BatchResult:
    """One entry per item: a vector and its flag, or the error that kept it out."""

    model: str | None
    vectors: list[np.ndarray | None]
    truncated: list[bool]
    errors: list[tuple[str, str] | None]


class Engine(Protocol):
    name: str
    model_id: str | None  # known before the run (local, api), else learned from the first answer

    def embed(self, kind: str, payloads: Sequence[bytes | str]) -> BatchResult: ...

    def close(self) -> None: ...


def rejected(error: EmbedError) -> ItemRejected | None:
    """An ItemRejected when ``error`` is the input's fault (a 4xx but 429), else None (the run should stop)."""
    status = int(error.status)
    if 400 <= status < 500 and not isinstance(error, ThrottledError):
        return ItemRejected(error.code, error.message)
    return None


def isolating(call: Callable[[list[Any]], Answer], payloads: Sequence[Any]) -> BatchResult:
    """``call`` on the whole batch; if it raises ItemRejected, on each item alone."""
    count = len(payloads)
    try:
        answer = call(list(payloads))
    except ItemRejected as e:
        if count == 1:
            return BatchResult(None, [None], [False], [(e.code, e.message)])
        parts = [isolating(call, [p]) for p in payloads]
        model = next((p.model for p in parts if p.model), None)
        return BatchResult(
            model,
            [p.vectors[0] for p in parts],
            [p.truncated[0] for p in parts],
            [p.errors[0] for p in parts],
        )
    if answer.vectors.shape[0] != count:
        raise RuntimeError(f"{answer.vectors.shape[0]} vectors came back for {count} items")
    truncated = list(answer.truncated) if answer.truncated is not None else [False] * count
    return BatchResult(answer.model, list(answer.vectors), [bool(t) for t in truncated], [None] * count)


def from_embeddings(emb: Any) -> Answer:
    """An omnisearch_embed Embeddings as an Answer."""
    matrix = np.asarray(emb.vectors, dtype=np.float32).reshape(len(emb.vectors), emb.dimension)
    return Answer(emb.model, matrix, emb.truncated)
