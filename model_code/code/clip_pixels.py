"""open_clip's image preprocessing in Pillow and numpy: the same pixels as its transforms, without torch.

Ships next to inference.py in code/. open_clip's eval transform (``image_transform_v2`` over the model's
``preprocess_cfg``) is torchvision's Resize and CenterCrop on a PIL image, then ToTensor and Normalize. On PIL
images torchvision only computes sizes and offsets and calls Pillow, so :class:`Preprocess` computes the same
sizes (the short side scaled with ``int``, crop offsets rounded with Python's ``round``) and calls the same
Pillow resampling; :func:`normalize` is ToTensor's and Normalize's float32 arithmetic in numpy. The
configuration is clip_onnx.json's ``preprocess``, which clip_export.py copies from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width), as torchvision reads an int or a sequence."""
    if isinstance(size, int):
        return size, size
    return (int(size[0]), int(size[0])) if len(size) == 1 else (int(size[0]), int(size[1]))


def _center_crop(img: Image.Image, height: int, width: int, fill: int = 0) -> Image.Image:
    """torchvision's center_crop (open_clip's CenterCropOrPad when ``fill`` is set): pad if smaller, then crop."""
    if width > img.width or height > img.height:
        left, top = max(0, (width - img.width) // 2), max(0, (height - img.height) // 2)
        right, bottom = max(0, (width - img.width + 1) // 2), max(0, (height - img.height + 1) // 2)
        img = ImageOps.expand(img, (left, top, right, bottom), fill=(fill,) * len(img.getbands()))
        if img.width == width and img.height == height:
            return img
    top = round((img.height - height) / 2.0)
    left = round((img.width - width) / 2.0)
    return img.crop((left, top, left + width, top + height))


class Preprocess:
    """A PIL RGB image to model-sized uint8 HWC pixels, as open_clip's eval transform before ToTensor.

    ``resize_mode``: ``shortest`` (scale the short side, centre crop), ``squash`` (scale to the size), or
    ``longest`` (scale the long side, pad and centre crop with ``fill_color``).
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.height, self.width = _pair(cfg["size"])
        self.mode = cfg.get("resize_mode") or "shortest"
        if self.mode not in ("shortest", "squash", "longest"):
            raise ValueError(f"resize_mode {self.mode!r} is not shortest, squash or longest")
        self.resample = _RESAMPLING.get(cfg.get("interpolation") or "bicubic", Image.Resampling.BICUBIC)
        self.fill = int(cfg.get("fill_color") or 0)
        mean, std = cfg.get("mean") or OPENAI_MEAN, cfg.get("std") or OPENAI_STD
        self.mean = np.asarray(mean if isinstance(mean, Sequence) else (mean,) * 3, dtype=np.float32)
        self.std = np.asarray(std if isinstance(std, Sequence) else (std,) * 3, dtype=np.float32)

    def _resize(self, img: Image.Image, height: int, width: int) -> Image.Image:
        if (img.height, img.width) == (height, width):
            return img
        return img.resize((width, height), self.resample)

    def __call__(self, img: Image.Image) -> np.ndarray:
        h, w = self.height, self.width
        if self.mode == "squash":
            img = self._resize(img, h, w)
        elif self.mode == "shortest" and h == w:  # torchvision's Resize(int): the short side to h
            short, long = (img.width, img.height) if img.width <= img.height else (img.height, img.width)
            new_long = int(h * long / short)
            img = self._resize(img, new_long, h) if img.width <= img.height else self._resize(img, h, new_long)
            img = _center_crop(img, h, w)
        else:  # open_clip's ResizeKeepRatio: by the shorter (or, for longest, the longer) ratio
            ratios = (img.height / h, img.width / w)
            ratio = max(ratios) if self.mode == "longest" else min(ratios)
            # at least one pixel: open_clip's own transform fails on a 1x3000 image in longest mode
            img = self._resize(img, max(1, round(img.height / ratio)), max(1, round(img.width / ratio)))
            img = _center_crop(img, h, w, self.fill if self.mode == "longest" else 0)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)

    def normalize(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 HWC images to one float32 NCHW batch: ToTensor's ``/ 255`` and Normalize's ``(x - mean) / std``."""
        x = np.stack(batch).astype(np.float32) / np.float32(255)
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
