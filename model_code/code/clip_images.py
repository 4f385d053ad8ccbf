"""Images to model-ready batches: decoded in threads on the CPU, or batched JPEG decoding on CUDA.

Ships next to inference.py in code/. ``predict_fn`` asks a :class:`Plan` for pixels chunk by chunk. On the
CPU each image is decoded and resized in the decode threads (clip_inputs.prepare) while the model works on
the previous chunk. On CUDA a chunk's JPEGs are decoded together on the GPU (nvJPEG, through
``torchvision.io.decode_jpeg`` on a list) and resized, cropped and normalised there, with open_clip's own
Resize and CenterCrop transforms (they accept tensors); other formats, and any chunk the GPU decoder
refuses, take the CPU path. :func:`check` validates one image before it joins a batch, so a server can
answer a bad image on its own request.

``CLIP_GPU_DECODE``: ``auto`` (default: on CUDA), ``off``, or ``on`` (also on the CPU, where torchvision
decodes the list itself: how the tensor path is tested without a GPU).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_inputs as _inputs
    from .clip_env import env_choice
    from .clip_inputs import Decoded
else:
    import clip_inputs as _inputs
    from clip_env import env_choice
    from clip_inputs import Decoded

_logger = logging.getLogger("omnisearch_embed.model")

_JPEG_MAGIC = b"\xff\xd8\xff"
_TENSOR_STEPS = ("Resize", "CenterCrop")  # applied to the decoded tensor
_SKIPPED_STEPS = ("MaybeConvertMode", "_convert_to_rgb")  # decode_jpeg already gives RGB


@dataclass(frozen=True)
class Checked:
    """A JPEG whose header passed the checks, left for the GPU to decode with its batch."""

    data: bytes


def gpu_decode(clip: Any) -> bool:
    """Whether this model's JPEGs are decoded as tensors (see the module docstring)."""
    mode = env_choice(os.environ, "CLIP_GPU_DECODE", "auto", ("auto", "on", "off"))
    if mode == "off" or (mode != "on" and clip.device.type != "cuda"):
        return False
    return _tensor_steps(clip) is not None


def _tensor_steps(clip: Any) -> list[Any] | None:
    """open_clip's PIL steps that run on tensors as they are, or None if any of them cannot."""
    if getattr(clip, "pil_stage", None) is None:
        return None
    steps = []
    for step in list(clip.preprocess.transforms)[:-2]:  # split_preprocess: the last two are ToTensor, Normalize
        name = getattr(step, "__name__", type(step).__name__)  # functions by name, transforms by class
        if name in _TENSOR_STEPS:
            steps.append(step)
        elif name not in _SKIPPED_STEPS:
            return None
    return steps


def check(index: int, data: Any, clip: Any) -> Decoded | Checked:
    """In a decode thread: InputError if the image is unusable; otherwise what :class:`Plan` needs of it."""
    if isinstance(data, Decoded | Checked):
        return data
    if gpu_decode(clip) and bytes(data[:3]) == _JPEG_MAGIC:
        with _inputs.opened(index, data) as img:
            if img.format == "JPEG" and img.mode in ("RGB", "L"):  # what nvJPEG decodes to RGB as-is
                return Checked(bytes(data))
    return _inputs.decoded(index, data, clip)


def split_preprocess(clip: Any) -> None:
    """Split open_clip's Compose(PIL steps..., ToTensor, Normalize) so only PIL work runs in the threads.

    Threads then hand back uint8 arrays; scaling and normalising happen once per batch on the device
    (a quarter of the bytes to copy to a GPU, and no torch kernels competing in the decode threads).
    The arithmetic is ToTensor's and Normalize's, so the pixels are the same. Other pipelines run whole.
    """
    steps = list(getattr(clip.preprocess, "transforms", []))
    names = [type(t).__name__ for t in steps]
    if len(steps) < 2 or names[-2] not in ("ToTensor", "MaybeToTensor") or names[-1] != "Normalize":
        return
    pil_steps, norm = steps[:-2], steps[-1]
    clip.pil_stage = lambda img: functools.reduce(lambda acc, step: step(acc), pil_steps, img)
    clip.mean = torch.tensor(norm.mean, dtype=torch.float32, device=clip.device).view(1, -1, 1, 1)
    clip.std = torch.tensor(norm.std, dtype=torch.float32, device=clip.device).view(1, -1, 1, 1)


def pixels(items: list[Any], clip: Any) -> torch.Tensor:
    """One model-ready batch (N, 3, H, W) on the device in the model's dtype."""
    if clip.pil_stage is None:
        return torch.stack(items).to(clip.device, dtype=clip.dtype, non_blocking=True)
    raw = torch.from_numpy(np.stack(items)).to(clip.device, non_blocking=True)
    x = raw.permute(0, 3, 1, 2).to(torch.float32).div(255)
    return x.sub(clip.mean).div(clip.std).to(clip.dtype)


class Plan(_inputs.Plan):
    """clip_inputs.Plan with the torch engine's pixels: CPU-decoded arrays, or JPEGs decoded on the GPU."""

    def __init__(self, items: list[Any], clip: Any) -> None:
        super().__init__(items, clip, check)

    def pixels(self, start: int, stop: int) -> torch.Tensor:
        """Items ``start:stop`` as one (N, 3, H, W) batch on the model's device, in its dtype."""
        ready = self.ready(start, stop)
        if not any(isinstance(r, Checked) for r in ready):
            return pixels([r.pixels for r in ready], self.clip)
        on_gpu = [i for i, r in enumerate(ready) if isinstance(r, Checked)]
        try:
            decoded = self._decode([ready[i].data for i in on_gpu])
        except RuntimeError as e:  # a JPEG nvJPEG cannot read (progressive on old drivers, 12-bit...): CPU path
            _logger.info("GPU decoding failed for a chunk of %d JPEGs (%s); decoding on the CPU", len(on_gpu), e)
            fallback = [self.clip.pool.submit(_inputs.prepare, start + i, ready[i].data, self.clip) for i in on_gpu]
            decoded = [self._to_device(f.result()) for f in fallback]
        images = [self._to_device(r.pixels) if isinstance(r, Decoded) else None for r in ready]
        for i, tensor in zip(on_gpu, decoded, strict=True):
            images[i] = tensor
        x = torch.stack(images).to(torch.float32).div(255)  # the arithmetic of pixels()
        return x.sub(self.clip.mean).div(self.clip.std).to(self.clip.dtype)

    def _to_device(self, hwc: np.ndarray) -> torch.Tensor:
        writable = np.require(hwc, requirements="W")  # PIL's arrays are read-only views
        return torch.from_numpy(writable).to(self.clip.device, non_blocking=True).permute(2, 0, 1)

    def _decode(self, jpegs: list[bytes]) -> list[torch.Tensor]:
        from torchvision.io import ImageReadMode, decode_jpeg

        raw = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in jpegs]
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders; the container runs 0.21
            warnings.simplefilter("ignore", DeprecationWarning)
            images = decode_jpeg(raw, mode=ImageReadMode.RGB, device=self.clip.device, apply_exif_orientation=True)
        steps = _tensor_steps(self.clip) or []
        out = []
        for image in images:
            for step in steps:
                image = step(image)
            out.append(image)
        return out
