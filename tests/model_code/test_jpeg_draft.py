"""JPEG draft decoding (libjpeg's DCT-domain downscale) changes vectors only in rounding.

It halves decode-and-preprocess time for photo-sized JPEGs, which is what bounds image throughput on a GPU;
this pins that the speed costs no meaningful accuracy, and that it can be turned off.
"""

from __future__ import annotations

import dataclasses
import io
import random
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw


def photo_jpegs(count: int, size: tuple[int, int] = (1600, 1200)) -> list[bytes]:
    rng = random.Random(3)
    out = []
    for _ in range(count):
        img = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(10):
            x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(30, 150)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), 90))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


@pytest.mark.parametrize("model_fixture", ["tiny", "vit_b32"])
def test_draft_decoding_keeps_the_vectors(inference: ModuleType, model_fixture: str, request: Any) -> None:
    clip = request.getfixturevalue(model_fixture)
    size = clip.model.visual.image_size
    size = max(size) if isinstance(size, (tuple, list)) else size
    assert clip.jpeg_draft_size == 2 * size, "on by default, at twice the model's input size"
    full = dataclasses.replace(clip, jpeg_draft_size=None)
    data = inference.Request(kind="images", items=photo_jpegs(6))
    drafted = inference.predict_fn(data, clip).vectors
    exact = inference.predict_fn(data, full).vectors
    cosines = (drafted * exact).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    assert not np.array_equal(drafted, exact)  # the draft path really ran


def test_draft_decodes_at_reduced_scale_but_never_below_the_model_size(inference: ModuleType) -> None:
    img = inference.decode_image(0, photo_jpegs(1, (1600, 1200))[0], draft_size=448)
    assert img.size == (800, 600)  # 1/2 scale: 1/4 would take the short side under 448
    assert inference.decode_image(0, photo_jpegs(1, (1600, 1200))[0]).size == (1600, 1200)
