"""The forward passes: a Request of texts or images becomes a Prediction, in bounded batches.

Ships next to inference.py in code/. Both towers are open_clip's torch model or the ONNX Runtime export
(``clip.onnx``); texts are sorted by length so each batch trims to its own longest text (clip_text.py), and
images are decoded ahead in the pool (or on the GPU, per chunk) while the model works on the previous chunk.
clip_records.py embeds Batch Transform's records through :func:`embed` too, so nothing here knows of records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_env as _env
    from . import clip_images as _images
    from . import clip_text as _text
    from .clip_inputs import Request
else:
    import clip_env as _env
    import clip_images as _images
    import clip_text as _text
    from clip_inputs import Request

TEXT_BATCH = _env.env_int(os.environ, "CLIP_TEXT_BATCH_SIZE", 256)
IMAGE_BATCH = _env.env_int(os.environ, "CLIP_IMAGE_BATCH_SIZE", 64)


@dataclass
class Prediction:
    """What ``predict_fn`` returns: a float32 count x dimension matrix and per-text token facts."""

    model_id: str
    vectors: np.ndarray
    truncated: list[bool] | None = None
    tokens: list[int] | None = None
    encoding: str = "float"
    logit_scale: float | None = None


def _finish(features: torch.Tensor, normalize: bool) -> np.ndarray:
    features = features.float()
    if normalize:
        features = F.normalize(features, dim=-1)
    return features.cpu().numpy()


def embed(data: Request, clip: Any) -> Prediction:
    """Embed ``data.items`` in order with ``clip`` (inference.ClipModel), in batches of the sizes above."""
    out = np.empty((len(data.items), clip.dimension), dtype=np.float32)
    towers = clip.onnx  # ONNX Runtime, else open_clip's torch model (text trimmed by clip_text.encode_text)
    text_tower = towers.encode_text if towers is not None else lambda tokens: _text.encode_text(clip.model, tokens)
    with torch.inference_mode():
        if data.kind == "texts":
            tokens, counts, truncated = _text.tokenize(clip, data.items)
            order = sorted(range(len(counts)), key=counts.__getitem__)
            for start in range(0, len(order), TEXT_BATCH):
                idx = order[start : start + TEXT_BATCH]
                out[idx] = _finish(text_tower(tokens[idx].to(clip.device)), data.normalize)
            return Prediction(clip.model_id, out, truncated, counts, data.encoding, logit_scale=clip.logit_scale)
        plan = _images.Plan(data.items, clip)
        try:
            for start in range(0, len(data.items), IMAGE_BATCH):
                pixels = plan.pixels(start, start + IMAGE_BATCH)
                features = (towers or clip.model).encode_image(pixels)
                out[start : start + len(pixels)] = _finish(features, data.normalize)
        finally:
            plan.cancel()
    return Prediction(clip.model_id, out, encoding=data.encoding, logit_scale=clip.logit_scale)
