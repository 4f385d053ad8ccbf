#!/usr/bin/env python
"""On a GPU machine: the serving container's figures against the H200 goals, in one run (bench/gpu_endpoint.sh).

1. Whole path at batch 256, in process (input_fn -> predict_fn -> output_fn, ViT-B-32 random weights, fp16):
   texts/s, and images/s for 224 px JPEGs decoded on the GPU (nvJPEG) and, for comparison, on the CPU.
2. Fidelity: GPU-decoded JPEGs against the CPU path, lowest cosine (goal >= 0.999).
3. Single-text invocations at concurrency 64 against ``python -m endpoint_server serve`` (batches up to
   256, ``--workers`` processes), from client processes with kept-alive connections: req/s, p50, p95.

Goals: texts at batch 256 >= 20,000/s; images at batch 256 >= 5,000/s; single texts at c=64 >= 5,000 req/s.
``--quick`` runs small counts (it also runs on the CPU, to check the script itself).

    python3 bench/endpoint_gpu.py [--quick] [--workers 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import endpoint_load
import numpy as np
import torch

from endpoint_server.model import load_inference

ROOT = Path(__file__).resolve().parents[1]

GOALS = {"texts_per_s": 20_000, "images_per_s": 5_000, "c64_req_per_s": 5_000, "min_cosine": 0.999}


def photo_jpegs(count: int, size: int = 224) -> list[bytes]:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(3)
    out = []
    for i in range(count):
        img = Image.linear_gradient("L").resize((size, size)).rotate(i % 360).convert("RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y, r = (int(v) for v in rng.integers(0, size, 3))
            draw.ellipse(
                (x - r // 3, y - r // 3, x + r // 3, y + r // 3), fill=tuple(int(c) for c in rng.integers(0, 256, 3))
            )
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def whole_path(inference, clip, kind: str, items: list, reps: int) -> float:
    """Items per second through input_fn -> predict_fn -> output_fn, best of ``reps`` after a warm-up."""
    import base64

    values = items if kind == "texts" else [base64.b64encode(i).decode() for i in items]
    body = json.dumps({kind: values, "encoding": "base64"}).encode()
    best = float("inf")
    for rep in range(reps + 1):
        if clip.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), clip), "application/json"
        )
        if rep:
            best = min(best, time.perf_counter() - started)
    return len(items) / best


def fidelity(inference, clip, jpegs: list[bytes]) -> float:
    vectors = {}
    for mode in ("off", "auto"):
        os.environ["CLIP_GPU_DECODE"] = mode
        vectors[mode] = inference.predict_fn(inference.Request("images", jpegs), clip).vectors.astype(np.float64)
    a, b = vectors["off"], vectors["auto"]
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def _client(url: str, concurrency: int, requests: int) -> tuple[list[float], float]:
    result = endpoint_load.load(url, concurrency, requests, "texts")
    return result.latencies, result.seconds


def server_load(model_dir: Path, workers: int, clients: int, requests: int) -> dict[str, float]:
    """Single-text invocations at concurrency 64, spread over ``clients`` processes."""
    env = {
        "ENDPOINT_MAX_BATCH_SIZE": "256",
        "ENDPOINT_MAX_QUEUE": "4096",
        "ENDPOINT_WORKERS": str(workers),
        "CLIP_MODEL": "ViT-B-32",
        "CLIP_PRETRAINED": "",  # random weights: the folder has code/ only
    }
    # This run sets the container environment itself (the device has no SAM translator to read template.yaml).
    endpoint_load.template_model_env = dict
    with ExitStack() as stack:
        url = stack.enter_context(endpoint_load.endpoint_server_target(model_dir.parent.parent, env))
        per = 64 // clients
        with ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_client, [url] * clients, [per] * clients, [requests // clients] * clients))
    latencies = sorted(t for lat, _ in parts for t in lat)
    seconds = max(s for _, s in parts)
    return {
        "c64_req_per_s": round(len(latencies) / seconds, 1),
        "c64_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "c64_p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=4, help="endpoint_server worker processes")
    parser.add_argument("--clients", type=int, default=8, help="client processes (64 connections in all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch, reps, requests = (32, 1, 640) if args.quick else (256, 5, 64_000)
    os.environ.update(
        CLIP_TEXT_BATCH_SIZE="256", CLIP_IMAGE_BATCH_SIZE="256", CLIP_MODEL="ViT-B-32", CLIP_PRETRAINED=""
    )
    figures: dict[str, float | str] = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "endpoint-server" / "model"
        (model_dir / "code").mkdir(parents=True)
        for source in (ROOT / "model_code" / "code").glob("*.py"):
            (model_dir / "code" / source.name).write_bytes(source.read_bytes())
        inference = load_inference(model_dir)
        clip = inference.model_fn(str(model_dir))  # no weights in the folder: CLIP_MODEL, random weights
        texts = [f"a photo of object number {i} on a wooden table" for i in range(batch)]
        jpegs = photo_jpegs(batch)
        figures["texts_per_s"] = round(whole_path(inference, clip, "texts", texts, reps))
        for mode in ("off", "auto"):
            os.environ["CLIP_GPU_DECODE"] = mode
            key = "images_per_s" if mode == "auto" else "images_per_s_cpu_decode"
            figures[key] = round(whole_path(inference, clip, "images", jpegs, reps))
        figures["min_cosine"] = round(fidelity(inference, clip, jpegs[:64]), 6)
        clip.pool.shutdown()
        del clip
        figures.update(server_load(model_dir, args.workers, args.clients, requests))
    print(f"serving container on {figures['device']} (ViT-B-32 random weights, {'quick' if args.quick else 'full'})")
    for name, value in figures.items():
        goal = GOALS.get(name)
        mark = "" if goal is None else f"  (goal {goal:,}: {'met' if float(value) >= goal else 'NOT met'})"
        print(f"  {name}: {value}{mark}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
