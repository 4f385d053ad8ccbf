#!/usr/bin/env python
"""Texts/s and images/s through inference.py's whole path against raw open_clip on ready tensors.

    python bench/model_throughput.py                                   # ViT-B-32 random weights, CPU, 1/8/32
    python bench/model_throughput.py --device cuda --precision fp16 --batch-sizes 64,256

Whole path: request bytes in (JSON, base64 JPEGs, as SageMakerBackend sends them), input_fn -> predict_fn
-> output_fn, response bytes out (base64 float32, as SageMakerBackend asks); tokenizing, JPEG decoding and
preprocessing included. Raw: ``model.encode_text`` on the tokenizer's full-context tensor and
``model.encode_image`` on a preprocessed batch already on the device. Ratio = whole / raw throughput.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Typical search queries: 6 to 11 tokens with start and end.
QUERIES = [
    "a red car parked by the sea",
    "two dogs playing in the snow",
    "a bowl of fresh fruit",
    "sunset over a mountain lake",
    "a man riding a bicycle in the city",
    "an old wooden house",
    "a cat sleeping on a sofa",
    "people walking on a busy street at night",
]


def make_jpegs(count: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """Photo-sized JPEGs with gradients and shapes (so they compress and decode like pictures)."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    out = []
    for i in range(count):
        img = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            x, y = rng.randrange(size[0]), rng.randrange(size[1])
            r = rng.randrange(20, 120)
            colour = (rng.randrange(256), rng.randrange(256), (40 * i) % 256)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def best_of(
    rounds: int,
    measure: Callable[[Callable[[], object]], float],
    raw: Callable[[], object],
    whole: Callable[[], object],
) -> tuple[float, float]:
    """Alternate raw and whole ``rounds`` times and keep each one's best: a busy machine only slows things."""
    results = [(measure(raw), measure(whole)) for _ in range(rounds)]
    return max(r[0] for r in results), max(r[1] for r in results)


def rate(fn: Callable[[], object], items: int, seconds: float, sync: Callable[[], None]) -> float:
    """Items per second over repeated calls (one warm-up call; at least two timed; sync before reading time)."""
    fn()
    sync()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync()
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= seconds:
            return calls * items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--precision", default=None, choices=["fp32", "fp16", "bf16"], help="default: fp32 on CPU, fp16 on CUDA"
    )
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per figure; the best is kept")
    parser.add_argument("--decode-threads", type=int, help="CLIP_DECODE_THREADS for the image decoding pool")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.decode_threads:
        os.environ["CLIP_DECODE_THREADS"] = str(args.decode_threads)

    import numpy as np
    import torch
    from PIL import Image

    from model_code.code import inference

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    clip = inference.load_model(args.model, "", device=args.device, precision=args.precision)
    device_name = torch.cuda.get_device_name(clip.device) if clip.device.type == "cuda" else "CPU"
    sync = torch.cuda.synchronize if clip.device.type == "cuda" else (lambda: None)
    print(
        f"{clip.model_id} on {device_name} ({clip.dtype}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {inference.DECODE_THREADS} decode threads"
    )

    def whole(body: bytes) -> Callable[[], bytes]:
        return lambda: inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), clip), "application/json"
        )[0]

    jpegs = make_jpegs(16)
    ready_image = torch.stack([clip.preprocess(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
    rows = []
    with torch.inference_mode():
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            texts = [QUERIES[i % len(QUERIES)] for i in range(batch)]
            tokens = clip.tokenizer(texts).to(clip.device)
            text_body = json.dumps({"texts": texts, "encoding": "base64"}).encode()
            measure = functools.partial(rate, items=batch, seconds=args.seconds, sync=sync)
            raw_t, whole_t = best_of(
                args.rounds, measure, functools.partial(clip.model.encode_text, tokens), whole(text_body)
            )
            trimmed = inference.encode_text(clip.model, tokens).float()
            full = clip.model.encode_text(tokens).float()
            cosine = float(torch.nn.functional.cosine_similarity(trimmed, full).min())

            images = [jpegs[i % len(jpegs)] for i in range(batch)]
            pixels = ready_image[torch.arange(batch) % len(jpegs)].to(clip.device, clip.dtype)
            image_body = json.dumps(
                {"images": [base64.b64encode(i).decode() for i in images], "encoding": "base64"}
            ).encode()
            raw_i, whole_i = best_of(
                args.rounds, measure, functools.partial(clip.model.encode_image, pixels), whole(image_body)
            )
            row = {
                "batch": batch,
                "texts_per_s_raw": raw_t,
                "texts_per_s_whole_path": whole_t,
                "text_ratio": whole_t / raw_t,
                "trim_min_cosine": cosine,
                "images_per_s_raw": raw_i,
                "images_per_s_whole_path": whole_i,
                "image_ratio": whole_i / raw_i,
            }
            rows.append(row)
            print(
                f"batch {batch:>4}: texts/s raw {raw_t:9.1f}  whole {whole_t:9.1f}  ratio {whole_t / raw_t:5.2f}x"
                f"  (trim cosine {cosine:.7f}) | images/s raw {raw_i:8.1f}  whole {whole_i:8.1f}"
                f"  ratio {whole_i / raw_i:5.2f}x",
                flush=True,
            )
    tokens_per_text = np.mean([n for n in inference.tokenize(clip, QUERIES)[1]])
    print(f"queries average {tokens_per_text:.1f} tokens (start and end included) of a {clip.context_length} context")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"model": clip.model_id, "device": device_name, "dtype": str(clip.dtype), "rows": rows}, indent=2
            )
        )


if __name__ == "__main__":
    main()
