"""int8 and ubinary encodings in the stdlib core, checked against numpy's own packbits and rounding."""

from __future__ import annotations

import base64
import random

import numpy as np
import pytest

from omnisearch_embed.compact import dequantize_int8, pack_ubinary, quantize_int8, unpack_ubinary


def random_vector(seed: int, dimension: int = 64) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0, 0.1) for _ in range(dimension)]


@pytest.mark.parametrize("seed", range(5))
def test_int8_is_a_per_vector_symmetric_scale(seed: int) -> None:
    vector = random_vector(seed)
    q, scale = quantize_int8(vector)
    peak = max(abs(v) for v in vector)
    assert scale == pytest.approx(peak / 127)
    assert q == np.round(np.asarray(vector) / scale).astype(int).tolist()
    assert max(abs(x) for x in q) == 127 and all(-127 <= x <= 127 for x in q)
    restored = dequantize_int8(q, scale)
    assert max(abs(a - b) for a, b in zip(restored, vector, strict=True)) <= scale / 2 + 1e-12


def test_a_zero_vector_has_scale_zero() -> None:
    assert quantize_int8([0.0, 0.0, 0.0]) == ([0, 0, 0], 0.0)


def test_ubinary_is_numpys_packbits_of_the_positive_signs() -> None:
    assert base64.b64decode(pack_ubinary([1, -1, 1, -1, -1, -1, -1, 0.5, -2, 3])) == bytes([0b10100001, 0b01000000])
    for seed in range(5):
        vector = random_vector(seed, 77)  # not a multiple of 8: zero-padded
        expected = np.packbits(np.asarray(vector) > 0).tobytes()
        assert base64.b64decode(pack_ubinary(vector)) == expected
        assert unpack_ubinary(pack_ubinary(vector), 77) == [int(v > 0) for v in vector]


def test_zero_counts_as_a_zero_bit() -> None:
    assert base64.b64decode(pack_ubinary([0.0] * 8)) == b"\x00"
