"""The forward passes: a Request of texts or images becomes a Prediction, in bounded batches, on either engine.

Ships next to inference.py in code/. The model is clip_ort.OrtClip (ONNX Runtime, no torch) or
clip_torch.ClipModel (open_clip); both give numpy token rows and float32 features, so one loop serves both.
Texts are sorted by length so each batch trims to its own longest text, and images are decoded ahead in the
pool (or on the GPU, per chunk) while the model works on the previous chunk. clip_records.py embeds Batch
Transform's records through :func:`embed` too, so nothing here knows of records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_env as _env
    from .clip_inputs import Request
else:
    import clip_env as _env
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


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (at least 1e-12, as torch's F.normalize), in float32."""
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return (features / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def embed(data: Request, clip: Any) -> Prediction:
    """Embed ``data.items`` in order with ``clip`` (OrtClip or ClipModel), in batches of the sizes above."""
    out = np.empty((len(data.items), clip.dimension), dtype=np.float32)
    if data.kind == "texts":
        tokens, counts, truncated = clip.tokenize(data.items)
        order = sorted(range(len(counts)), key=counts.__getitem__)
        for start in range(0, len(order), TEXT_BATCH):
            idx = order[start : start + TEXT_BATCH]
            out[idx] = clip.text_features(tokens[idx])
        vectors = unit_rows(out) if data.normalize else out
        return Prediction(clip.model_id, vectors, truncated, counts, data.encoding, logit_scale=clip.logit_scale)
    plan = clip.image_plan(data.items)
    try:
        for start in range(0, len(data.items), IMAGE_BATCH):
            features = clip.image_features(plan, start, start + IMAGE_BATCH)
            out[start : start + len(features)] = features
    finally:
        plan.cancel()
    vectors = unit_rows(out) if data.normalize else out
    return Prediction(clip.model_id, vectors, encoding=data.encoding, logit_scale=clip.logit_scale)
