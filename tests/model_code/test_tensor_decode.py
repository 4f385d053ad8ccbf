"""JPEGs decoded as tensors (the GPU path) give the CPU path's vectors: cos >= 0.999.

``CLIP_GPU_DECODE=on`` runs the tensor path on the CPU (torchvision decodes the list itself), so the
logic is pinned on every machine; the last test runs the real thing (nvJPEG) and skips without CUDA.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.model_code.test_jpeg_draft import photo_jpegs


def _jpeg(img: Image.Image, **save: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **save)
    return buf.getvalue()


def _mixed_inputs() -> list[bytes]:
    photos = photo_jpegs(3, (640, 480))
    base = Image.open(io.BytesIO(photos[0])).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the decoder must turn it as PIL's exif_transpose does
    png = io.BytesIO()
    base.save(png, "PNG")
    return [
        *photos,
        _jpeg(base.resize((300, 500)), exif=exif),
        _jpeg(base.convert("L")),  # grayscale JPEG: decoded to RGB
        _jpeg(base.convert("CMYK")),  # CMYK: the CPU path, chosen by check()
        png.getvalue(),  # not a JPEG: the CPU path
    ]


def _embed(inference: ModuleType, clip: Any, images: list[bytes]) -> np.ndarray:
    return inference.predict_fn(inference.Request("images", images), clip).vectors


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_tensor_decoding_matches_the_pil_path(
    inference: ModuleType, vit_b32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _mixed_inputs()
    monkeypatch.setenv("CLIP_GPU_DECODE", "off")
    want = _embed(inference, vit_b32, images)
    monkeypatch.setenv("CLIP_GPU_DECODE", "on")
    kinds = [type(inference.check_image(i, b, vit_b32)).__name__ for i, b in enumerate(images)]
    assert kinds == ["Checked"] * 5 + ["Decoded"] * 2
    got = _embed(inference, vit_b32, images)
    assert _cosines(got, want).min() >= 0.999


def test_checked_items_pass_through_and_bad_jpegs_fail_the_check(
    inference: ModuleType, vit_b32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIP_GPU_DECODE", "on")
    images = photo_jpegs(2, (320, 240))
    ahead = [inference.check_image(i, b, vit_b32) for i, b in enumerate(images)]
    assert np.array_equal(_embed(inference, vit_b32, ahead), _embed(inference, vit_b32, images))
    with pytest.raises(inference.InputError) as caught:
        inference.check_image(3, b"\xff\xd8\xff\xe0 not really a jpeg", vit_b32)
    assert caught.value.code == "invalid_image" and "images[3]" in str(caught.value)


def test_a_chunk_the_decoder_refuses_falls_back_to_the_cpu(
    inference: ModuleType, vit_b32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = photo_jpegs(2, (320, 240))
    monkeypatch.setenv("CLIP_GPU_DECODE", "off")
    want = _embed(inference, vit_b32, images)
    monkeypatch.setenv("CLIP_GPU_DECODE", "on")
    truncated = images[1][: len(images[1]) // 2]  # the header reads; the entropy-coded data does not
    assert type(inference.check_image(0, truncated, vit_b32)).__name__ == "Checked"
    got = _embed(inference, vit_b32, [images[0], images[1]])
    assert _cosines(got, want).min() >= 0.999
    with pytest.raises(inference.InputError):
        _embed(inference, vit_b32, [images[0], truncated])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the device run)")
def test_nvjpeg_batches_match_the_cpu_path_on_the_device(
    inference: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = inference.load_model("ViT-B-32", "", device="cuda", precision="fp32")
    images = _mixed_inputs() + photo_jpegs(24, (1024, 768))
    monkeypatch.setenv("CLIP_GPU_DECODE", "off")
    want = _embed(inference, clip, images)
    monkeypatch.setenv("CLIP_GPU_DECODE", "auto")
    assert inference._images.gpu_decode(clip)
    got = _embed(inference, clip, images)
    assert _cosines(got, want).min() >= 0.999
