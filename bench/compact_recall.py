"""What the compact encodings keep: recall@10 of int8 and ubinary against float32 on tiny-shapes.

The corpus is tiny-shapes' 32 classes (8 colours x 4 shapes), ``--per-class`` pictures each drawn by
model_code/tiny_shapes/shapes.py, plus one caption per class ("a red circle"). Every vector comes from the
bundled model through LocalClipBackend (unit length), then is encoded exactly as the API encodes it
(omnisearch_embed.compact) and decoded as the README says: int8 as ``q * scale``, ubinary as bits compared by
Hamming distance. For each query, recall@10 is the share of the float32 top 10 that the compact top 10 keeps;
top-1 is the share of queries whose best hit is of the query's own class. Three searches: caption -> pictures,
picture -> captions (top k capped at the 32 captions), picture -> other pictures.

    .venv/bin/python bench/compact_recall.py [--per-class 1] [--seed 7]
"""

from __future__ import annotations

import argparse
import base64
import io
import random

import numpy as np

from local_server.clip_backend import LocalClipBackend
from model_code.tiny_shapes.shapes import CLASSES, SIZES, article, render
from omnisearch_embed.compact import dequantize_int8, pack_ubinary, quantize_int8

K = 10


def corpus(per_class: int, seed: int) -> tuple[list[bytes], list[int], list[str]]:
    rng = random.Random(seed)
    images, labels = [], []
    for label, (colour, shape) in enumerate(CLASSES):
        for _ in range(per_class):
            out = io.BytesIO()
            render(colour, shape, rng.choice(SIZES), rng).save(out, "PNG")
            images.append(out.getvalue())
            labels.append(label)
    captions = [f"{article(colour)} {colour} {shape}" for colour, shape in CLASSES]
    return images, labels, captions


def int8_round_trip(vectors: np.ndarray) -> np.ndarray:
    rows = [dequantize_int8(*quantize_int8(v.tolist())) for v in vectors]
    return np.asarray(rows, dtype=np.float32)


def ubinary_bits(vectors: np.ndarray) -> np.ndarray:
    packed = [np.frombuffer(base64.b64decode(pack_ubinary(v.tolist())), np.uint8) for v in vectors]
    return np.unpackbits(np.stack(packed), axis=1)[:, : vectors.shape[1]]


def top(scores: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
    if exclude_self:
        scores = scores.copy()
        np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall(reference: np.ndarray, other: np.ndarray) -> float:
    kept = [len(set(a) & set(b)) / len(a) for a, b in zip(reference, other, strict=True)]
    return float(np.mean(kept))


def top1(ranked: np.ndarray, query_labels: list[int], item_labels: list[int]) -> float:
    return float(np.mean([item_labels[row[0]] == q for row, q in zip(ranked, query_labels, strict=True)]))


def search(
    name: str,
    queries: np.ndarray,
    items: np.ndarray,
    query_labels: list[int],
    item_labels: list[int],
    exclude_self: bool = False,
) -> None:
    k = min(K, items.shape[0] - (1 if exclude_self else 0))
    exact = top(queries @ items.T, k, exclude_self)
    q8, i8 = int8_round_trip(queries), int8_round_trip(items)
    int8 = top(q8 @ i8.T, k, exclude_self)
    qb, ib = ubinary_bits(queries), ubinary_bits(items)
    hamming = (qb[:, None, :] != ib[None, :, :]).sum(axis=2)
    binary = top(-hamming.astype(np.float64), k, exclude_self)
    # a picture's own class among the *other* pictures exists only with two or more per class
    scored = not exclude_self or len(item_labels) > len(set(item_labels))
    firsts = [f"{top1(r, query_labels, item_labels):.3f}" if scored else "n/a" for r in (exact, int8, binary)]
    print(
        f"| {name} | {len(queries)} x {len(items)} | {k} | {recall(exact, int8):.3f} | {recall(exact, binary):.3f} "
        f"| {' | '.join(firsts)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1, help="pictures per class (32 classes)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    images, labels, captions = corpus(args.per_class, args.seed)
    backend = LocalClipBackend("tiny-shapes")
    pictures = np.asarray(backend.embed_images(images).vectors, dtype=np.float32)
    texts = np.asarray(backend.embed_texts(captions).vectors, dtype=np.float32)
    dimension = pictures.shape[1]
    print(f"tiny-shapes, {dimension}-d: float32 {4 * dimension} B, int8 {dimension} B + 4 B scale, "
          f"ubinary {(dimension + 7) // 8} B per vector")  # fmt: skip
    print(
        "| search | queries x items | k | recall@k int8 | recall@k ubinary | top-1 float | top-1 int8 | top-1 ubinary |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    caption_labels = list(range(len(CLASSES)))
    search("caption -> pictures", texts, pictures, caption_labels, labels)
    search("picture -> captions", pictures, texts, labels, caption_labels)
    search("picture -> pictures", pictures, pictures, labels, labels, exclude_self=True)


if __name__ == "__main__":
    main()
