"""Compact vector encodings: ``int8`` (per-vector symmetric scale) and ``ubinary`` (packed sign bits).

``int8``: ``scale = max|v| / 127`` and ``q = round(v / scale)``, so ``v ≈ q * scale`` (the scale travels with
each vector; a zero vector has scale 0). A quarter of float32's bytes; cosine ranking is nearly unchanged.
``ubinary``: one bit per dimension, 1 where ``v > 0``, packed most significant bit first (numpy's
``packbits(v > 0)``, as infinity's ``ubinary`` and Weaviate's binary quantisation use them), padded with
zero bits to whole bytes, then base64: a 32nd of float32, compared by Hamming distance.
Stdlib only (no numpy), like the rest of the core.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

INT8_MAX = 127


def quantize_int8(vector: Sequence[float]) -> tuple[list[int], float]:
    """``(q, scale)`` with every ``q`` in -127..127 and ``v ≈ q * scale``."""
    peak = max((abs(v) for v in vector), default=0.0)
    if peak == 0.0:
        return [0] * len(vector), 0.0
    scale = peak / INT8_MAX
    return [max(-INT8_MAX, min(INT8_MAX, round(v / scale))) for v in vector], scale


def dequantize_int8(values: Sequence[int], scale: float) -> list[float]:
    return [q * scale for q in values]


def pack_ubinary(vector: Sequence[float]) -> str:
    """Sign bits, MSB first, zero-padded to whole bytes, as base64."""
    out = bytearray((len(vector) + 7) // 8)
    for i, v in enumerate(vector):
        if v > 0:
            out[i >> 3] |= 0x80 >> (i & 7)
    return base64.b64encode(bytes(out)).decode("ascii")


def unpack_ubinary(data: str, dimension: int) -> list[int]:
    """The bits of :func:`pack_ubinary` as 0/1, ``dimension`` of them."""
    raw = base64.b64decode(data, validate=True)
    return [(raw[i >> 3] >> (7 - (i & 7))) & 1 for i in range(dimension)]
