"""Zero-shot colour x shape accuracy and text->image recall@1 on freshly generated images.

``python -m model_code.tiny_shapes.evaluate [--seed N] [--per-class K]`` runs the committed checkpoint
through inference.py's whole path (PNG bytes in, JSON out), as the server would.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from model_code.code import inference
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH
from model_code.tiny_shapes.shapes import CLASSES, ZERO_SHOT_TEMPLATES, balanced_set, random_caption, zero_shot_prompts

EmbedTexts = Callable[[Sequence[str]], np.ndarray]
EmbedImages = Callable[[Sequence[Image.Image]], np.ndarray]
HELD_OUT_SEED = 20_240_601  # the trainer never draws from this seed


def class_text_features(embed_texts: EmbedTexts) -> np.ndarray:
    """One unit vector per class: the mean of its zero-shot prompt embeddings."""
    prompts = [p for c, s in CLASSES for p in zero_shot_prompts(c, s)]
    feats = embed_texts(prompts).reshape(len(CLASSES), len(ZERO_SHOT_TEMPLATES), -1).mean(axis=1)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def evaluate(embed_texts: EmbedTexts, embed_images: EmbedImages, seed: int, per_class: int) -> dict[str, float]:
    """Zero-shot top-1 over all classes, and recall@1 of one caption per image against every image."""
    samples = balanced_set(seed, per_class)
    images = embed_images([s.image for s in samples])
    labels = np.array([s.label for s in samples])
    top1 = float(((images @ class_text_features(embed_texts).T).argmax(axis=1) == labels).mean())
    rng = random.Random(seed + 1)
    captions = [random_caption(s, rng) for s in samples]
    best = (embed_texts([c for c, _ in captions]) @ images.T).argmax(axis=1)
    hits = [
        (samples[b].colour, samples[b].shape) == (q.colour, q.shape) and size in (None, samples[b].size)
        for b, q, (_, size) in zip(best, samples, captions, strict=True)
    ]
    return {"zero_shot_top1": top1, "text_to_image_recall_at_1": float(np.mean(hits)), "images": len(samples)}


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def inference_embedders(clip: object) -> tuple[EmbedTexts, EmbedImages]:
    """Embedding callables that go through input_fn -> predict_fn -> output_fn with JSON bodies."""

    def call(body: dict[str, object]) -> np.ndarray:
        data = inference.input_fn(json.dumps(body).encode(), "application/json")
        raw, _ = inference.output_fn(inference.predict_fn(data, clip), "application/json")
        return np.asarray(json.loads(raw)["embeddings"], dtype=np.float32)

    def texts(items: Sequence[str]) -> np.ndarray:
        return call({"texts": list(items)})

    def images(items: Sequence[Image.Image]) -> np.ndarray:
        return call({"images": [base64.b64encode(png_bytes(i)).decode() for i in items]})

    return texts, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--checkpoint", default=str(CHECKPOINT_PATH))
    args = parser.parse_args()
    clip = inference.load_model("tiny-shapes", args.checkpoint, config_path=CONFIG_PATH)
    result = evaluate(*inference_embedders(clip), seed=args.seed, per_class=args.per_class)
    print(
        f"tiny-shapes on {result['images']} fresh images (seed {args.seed}): "
        f"zero-shot top-1 {result['zero_shot_top1']:.1%}, "
        f"text->image recall@1 {result['text_to_image_recall_at_1']:.1%}"
    )


if __name__ == "__main__":
    main()
