#!/usr/bin/env python
"""On a GPU machine: inference.py's CUDA half-precision path gives the CPU fp32 vectors (cosine), whole path.

    python bench/cuda_check.py        # tiny-shapes checkpoint + ViT-B-32 random weights (seeded alike)

Prints the lowest per-item cosine between devices for texts and images; exits 1 below 0.99 (fp16 rounding
stays far above that), so a broken CUDA path (wrong dtype, lost normalisation, trimming bug) shows.
"""

from __future__ import annotations

import base64
import io
import json
import random
import sys

import numpy as np
import torch

from model_code.code import inference
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH
from model_code.tiny_shapes.shapes import CLASSES, sample

TEXTS = ["a red circle", "a photo of a small blue star", "green", "a " + "very " * 90 + "long caption"]


def whole_path(inference, clip, body: dict) -> np.ndarray:
    data = inference.input_fn(json.dumps(body).encode(), "application/json")
    payload, _ = inference.output_fn(inference.predict_fn(data, clip), "application/x-npy")
    return np.load(io.BytesIO(payload))


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    rng = random.Random(5)
    images = []
    for colour, shape in CLASSES[:16]:
        buf = io.BytesIO()
        sample(rng, colour, shape).image.save(buf, "PNG")
        images.append(base64.b64encode(buf.getvalue()).decode())
    ok = True
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for name, pretrained, config in (
        ("tiny-shapes", str(CHECKPOINT_PATH), CONFIG_PATH),
        ("ViT-B-32", "", None),
    ):
        models = {}
        for device in ("cpu", "cuda"):
            torch.manual_seed(0)
            models[device] = inference.load_model(name, pretrained, device=device, config_path=config)
        print(f"{name}: cuda dtype {models['cuda'].dtype}, cpu dtype {models['cpu'].dtype}")
        for kind, body in (("texts", {"texts": TEXTS}), ("images", {"images": images})):
            cpu, gpu = (whole_path(inference, models[d], body) for d in ("cpu", "cuda"))
            cos = min_cosine(cpu, gpu)
            norms = np.linalg.norm(gpu, axis=1)
            print(f"  {kind}: min cosine cuda-fp16 vs cpu-fp32 {cos:.6f}; norms {norms.min():.4f}..{norms.max():.4f}")
            ok = ok and cos >= 0.99 and bool(np.allclose(norms, 1, atol=1e-3))
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
