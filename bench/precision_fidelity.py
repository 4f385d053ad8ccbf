"""Reduced precision on the CPU (opt-in ``CLIP_PRECISION=bf16``): its vectors against fp32's, and its speed.

Fidelity: cosine between the bf16 and the fp32 vector of every text of the golden corpus
(omnisearch_testkit/golden_texts.py, plus seeded random mixtures) and of the peer benchmark's 32 synthetic
224 px JPEGs, through inference.py's whole predict_fn. Goal: min cosine >= 0.999. Speed: median wall time of
predict_fn for 1 text, 32 texts and 1 image, in this process, same thread settings. The HTTP figures come
from ``bench/peer_infinity.py --ours-env CLIP_PRECISION=bf16``.

    .venv/bin/python bench/precision_fidelity.py [--model ViT-B-32-quickgelu] [--precision bf16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from peer_infinity import caption, make_jpeg

from model_code.code import inference
from omnisearch_testkit.golden_texts import GOLDEN, random_texts


def median_ms(fn, repeats: int = 10) -> float:
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32-quickgelu", help="open_clip model, random weights")
    parser.add_argument("--precision", default="bf16", help="the reduced precision to check against fp32")
    args = parser.parse_args(argv)
    texts = [t for t in GOLDEN + random_texts(200) if t.strip()]
    images = [make_jpeg(seed) for seed in range(32)]
    models = {p: inference.load_model(args.model, "", device="cpu", precision=p) for p in ("fp32", args.precision)}
    print(f"{args.model} random weights, CPU, {torch.get_num_threads()} torch threads; {args.precision} against fp32")

    def embed(precision: str, kind: str, items: list) -> np.ndarray:
        return inference.predict_fn(inference.Request(kind, items), models[precision]).vectors

    for kind, items in (("texts", texts), ("images", images)):
        ref, low = embed("fp32", kind, items), embed(args.precision, kind, items)
        cos = np.sum(ref * low, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(low, axis=1))
        verdict = "met" if cos.min() >= 0.999 else "NOT met"
        print(f"  fidelity {kind:6} n={len(items):<4} min cos {cos.min():.6f}  mean {cos.mean():.6f}  ({verdict})")
    cases = (("1 text", "texts", [caption(1)]), ("32 texts", "texts", [caption(i) for i in range(32)]),
             ("1 image", "images", images[:1]))  # fmt: skip
    for name, kind, items in cases:
        fp32 = median_ms(lambda kind=kind, items=items: embed("fp32", kind, items))
        low = median_ms(lambda kind=kind, items=items: embed(args.precision, kind, items))
        print(f"  speed {name:9} fp32 {fp32:7.1f} ms  {args.precision} {low:7.1f} ms  ({fp32 / low:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
