"""The torch engine: open_clip's model built and run, for CUDA, for exporting, and where no ONNX files exist.

Ships next to inference.py in code/, which imports it only when a model needs torch, so a CPU door serving an
archive's ONNX towers (clip_ort.py) never imports torch or open_clip. :class:`ClipModel` answers the same
calls as clip_ort.OrtClip (tokens, features, image plans), so clip_embed.py drives both with one loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_activation as _activation  # QuickGELU or GELU for a weights file
    from . import clip_archive as _archive
    from . import clip_env as _env
    from . import clip_images as _images
    from . import clip_inputs as _inputs
    from . import clip_text as _text
else:
    import clip_activation as _activation
    import clip_archive as _archive
    import clip_env as _env
    import clip_images as _images
    import clip_inputs as _inputs
    import clip_text as _text

logger = logging.getLogger("omnisearch_embed.model")
PRECISION_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _numpy(features: torch.Tensor) -> np.ndarray:
    return features.float().cpu().numpy()


@dataclass
class ClipModel:
    """What ``model_fn`` returns for the torch engine: open_clip's model with its transforms and tokenizer."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    model_id: str
    device: torch.device
    dtype: torch.dtype
    dimension: int
    context_length: int
    pool: ThreadPoolExecutor
    logit_scale: float
    pil_stage: Callable[[Image.Image], Image.Image] | None = None  # preprocess up to ToTensor, run in threads
    mean: torch.Tensor | None = None  # Normalize's, as [1, 3, 1, 1] float32 on the device
    std: torch.Tensor | None = None
    jpeg_draft_size: int | None = None  # see clip_inputs.decode_image and draft_size

    engine = "torch"
    onnx = None  # the torch engine runs no ONNX graph

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        tokens, counts, truncated = _text.tokenize(self, texts)
        return tokens.numpy(), counts, truncated

    def text_features(self, tokens: np.ndarray) -> np.ndarray:
        """Features of token rows, run on the context trimmed to the rows' longest text (clip_text.encode_text)."""
        with torch.inference_mode():
            return _numpy(_text.encode_text(self.model, torch.from_numpy(tokens).to(self.device)))

    def image_plan(self, items: list[Any]) -> _images.Plan:
        return _images.Plan(items, self)

    def image_features(self, plan: _images.Plan, start: int, stop: int) -> np.ndarray:
        with torch.inference_mode():
            return _numpy(self.model.encode_image(plan.pixels(start, stop)))

    def check_image(self, index: int, data: Any) -> Any:
        return _images.check(index, data, self)


def load_model(
    model_name: str,
    pretrained: str = "",
    *,
    device: str | None = None,
    precision: str | None = None,
    config_path: str | Path | None = None,
    model_id: str | None = None,
    quick_gelu: bool | None = None,
) -> ClipModel:
    """Build through open_clip's factory; ``pretrained`` is a tag, a checkpoint path or "" (random)."""
    if config_path is not None:
        open_clip.add_model_config(config_path)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not precision:
        default = "fp16" if dev.type == "cuda" else "fp32"
        precision = _env.env_choice(os.environ, "CLIP_PRECISION", "auto", ("auto", *PRECISION_DTYPES))
        precision = default if precision == "auto" else precision  # auto: CUDA's fp16, the CPU's fp32 (torch)
    if precision not in PRECISION_DTYPES:
        raise ValueError(f"precision {precision!r} is not one of {sorted(PRECISION_DTYPES)}")
    quick_gelu = _activation.quick_gelu_for(model_name, pretrained, quick_gelu)  # refuses a file it cannot tell
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are the same in every process
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=pretrained or None,
            device=dev,
            precision=precision,
            force_quick_gelu=bool(quick_gelu),
        )
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    with torch.inference_mode():
        probe = model.encode_text(tokenizer(["probe"]).to(dev))
        logit_scale = float(model.logit_scale.exp())  # in inference mode: a plain number, no autograd warning
    clip = ClipModel(
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        model_id=model_id or _archive.model_id_for(model_name, pretrained),
        device=dev,
        dtype=PRECISION_DTYPES[precision],
        dimension=int(probe.shape[-1]),
        context_length=int(getattr(tokenizer, "context_length", None) or model.context_length),
        pool=_inputs.decode_pool(),
        logit_scale=logit_scale,
    )
    _images.split_preprocess(clip)
    _text.tokenize(clip, ["probe"])  # builds the fast tokenizer now rather than on the first request
    clip.jpeg_draft_size = _inputs.draft_size(getattr(model.visual, "image_size", None))
    _archive.announce(model_name)
    logger.info("loaded %s on %s (%s), dimension %d", clip.model_id, dev, precision, clip.dimension)
    return clip


def open_clip_tokens(model_name: str, config_path: Path | None, context_length: int) -> Callable[..., Any]:
    """open_clip's tokenizer for ONNX towers exported before their tokenizer was saved beside them."""
    if config_path is not None:
        open_clip.add_model_config(config_path)
    holder = type("Tokens", (), {"tokenizer": open_clip.get_tokenizer(model_name), "context_length": context_length})

    def tokens(texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        ids, counts, truncated = _text.tokenize(holder, texts)
        return ids.numpy(), counts, truncated

    return tokens
