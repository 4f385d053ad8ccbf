"""The value every backend returns, and the float32 <-> base64 codec used on the wire and in the API.

Kept free of numpy: the stdlib ``array`` type packs float32 little-endian just as fast for
the sizes an API request carries, and the Lambda layer stays small.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

SERVICE_SAGEMAKER = "sagemaker"
SERVICE_LOCAL = "local"
SERVICE_LAMBDA_MODEL = "lambda-model"  # the model in a Lambda function (LambdaModelBackend)


@dataclass(frozen=True, slots=True)
class Embeddings:
    """A batch of vectors, in input order, with where they came from.

    ``truncated`` and ``tokens`` are per item for texts (as the model's tokenizer counted them)
    and ``None`` for images. ``logit_scale`` is the model's own temperature (``exp`` of its learnt
    logit scale, 100 for OpenAI's CLIP) when the model reports it: zero-shot scores are softmax over it.
    """

    vectors: list[list[float]]
    model: str
    service: str
    dimension: int
    truncated: list[bool] | None = None
    tokens: list[int] | None = None
    meta: dict[str, object] = field(default_factory=dict)
    logit_scale: float | None = None

    def __post_init__(self) -> None:
        for row in self.vectors:
            if len(row) != self.dimension:
                raise ValueError(f"row of length {len(row)} in embeddings of dimension {self.dimension}")

    @property
    def count(self) -> int:
        return len(self.vectors)


def _to_le(values: array) -> array:
    if sys.byteorder != "little":
        values.byteswap()
    return values


def encode_vector(vector: Sequence[float]) -> str:
    """One vector as base64 of little-endian float32 (what OpenAI's ``encoding_format=base64`` means)."""
    return base64.b64encode(_to_le(array("f", vector)).tobytes()).decode("ascii")


def encode_matrix(vectors: Sequence[Sequence[float]]) -> str:
    """A row-major count x dimension matrix as one base64 string of little-endian float32."""
    flat = array("f")
    for row in vectors:
        flat.extend(row)
    return base64.b64encode(_to_le(flat).tobytes()).decode("ascii")


def decode_matrix(data: str | bytes, dimension: int) -> list[list[float]]:
    """Inverse of :func:`encode_matrix`; ``data`` may be base64 text or the raw float32 bytes."""
    raw = base64.b64decode(data, validate=True) if isinstance(data, str) else bytes(data)
    if dimension <= 0 or len(raw) % (4 * dimension):
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 rows of dimension {dimension}")
    flat = array("f")
    flat.frombytes(raw)
    _to_le(flat)
    values = flat.tolist()
    return [values[i : i + dimension] for i in range(0, len(values), dimension)]


def used_fallback(emb: Embeddings) -> bool:
    """True when a FallbackBackend answered from its secondary (it says so in ``meta``)."""
    return bool(emb.meta.get("fallback"))
