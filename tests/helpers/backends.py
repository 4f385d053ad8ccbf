"""StaticBackend: a deterministic Backend test double (real protocol, no model).

Each vector is derived from the input's bytes (sha256), so a test can compute the expected vector
of any item with :func:`vector_for` and check order, normalisation and which input went where.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Sequence
from typing import Any

from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import EmbedError

CONTEXT_TOKENS = 77


def vector_for(kind: str, data: bytes, dimension: int = 8, normalize: bool = True) -> list[float]:
    """The vector StaticBackend gives ``data`` (``kind`` is ``text`` or ``image``), float32-exact."""
    raw = b""
    counter = 0
    while len(raw) < dimension:
        raw += hashlib.sha256(kind.encode() + b":" + counter.to_bytes(2, "big") + data).digest()
        counter += 1
    values = [(b - 127.5) / 127.5 for b in raw[:dimension]]
    if normalize:
        norm = math.sqrt(sum(v * v for v in values))
        values = [v / norm for v in values]
    return array("f", values).tolist()


def token_count(text: str) -> int:
    """A stand-in tokenizer: words plus start and end tokens."""
    return len(text.split()) + 2


class StaticBackend:
    """Implements :class:`omnisearch_embed.backends.base.Backend`; records every call in ``calls``."""

    def __init__(
        self,
        model_id: str = "static-test",
        service: str = SERVICE_LOCAL,
        dimension: int = 8,
        *,
        fail_with: EmbedError | None = None,
        logit_scale: float | None = None,
    ) -> None:
        self.model_id = model_id
        self.service = service
        self.dimension = dimension
        self.fail_with = fail_with
        self.logit_scale = logit_scale
        self.calls: list[tuple[str, list[Any], bool]] = []

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        self.calls.append(("texts", list(texts), normalize))
        if self.fail_with is not None:
            raise self.fail_with
        tokens = [token_count(t) for t in texts]
        return Embeddings(
            vectors=[vector_for("text", t.encode("utf-8"), self.dimension, normalize) for t in texts],
            model=self.model_id,
            service=self.service,
            dimension=self.dimension,
            truncated=[n > CONTEXT_TOKENS for n in tokens],
            tokens=[min(n, CONTEXT_TOKENS) for n in tokens],
            logit_scale=self.logit_scale,
        )

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        self.calls.append(("images", list(images), normalize))
        if self.fail_with is not None:
            raise self.fail_with
        return Embeddings(
            vectors=[vector_for("image", bytes(b), self.dimension, normalize) for b in images],
            model=self.model_id,
            service=self.service,
            dimension=self.dimension,
            logit_scale=self.logit_scale,
        )

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": self.service, "model": self.model_id}
