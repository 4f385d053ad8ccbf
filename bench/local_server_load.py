"""Load test of the local server: requests/s and p50/p95 latency, dynamic batching on vs off.

Starts the real server (``python -m local_server``) twice in a subprocess, serving ViT-B-32 with random
weights (the demo model is too cheap to show what batching buys), and drives single-text and single-image
requests at concurrency 1 and 16 with httpx client threads. Request counts are bounded so a run takes a few
minutes on 2 CPU cores. Prints a table and the batching speed-up; target: >= 3x for texts at concurrency 16.

    .venv/bin/python bench/local_server_load.py [--model ViT-B-32] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from client_load import run_clients
from local_server_process import local_server
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# (kind, concurrency) -> requests per run at --scale 1
REQUESTS = {("text", 1): 24, ("text", 16): 96, ("image", 1): 12, ("image", 16): 48}


@dataclass
class Result:
    mode: str
    kind: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


@contextmanager
def server(model: str, batching: bool) -> Iterator[str]:
    """``python -m local_server`` on a free port; yields its URL."""
    with local_server(model, *([] if batching else ["--no-batching"])) as (url, _process):
        yield url


def make_images(count: int) -> list[bytes]:
    rng = random.Random(0)
    images = []
    for _ in range(count):
        img = Image.effect_noise((256, 256), rng.uniform(20, 80)).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        images.append(buf.getvalue())
    return images


def drive(
    url: str, send: Callable[[httpx.Client, int], httpx.Response], total: int, concurrency: int
) -> tuple[float, list[float]]:
    """``total`` requests from ``concurrency`` client threads; returns (wall seconds, per-request latencies)."""

    def call(client: httpx.Client, index: int) -> float:
        began = time.perf_counter()
        response = send(client, index)
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        return elapsed

    return run_clients(concurrency, total, lambda: httpx.Client(base_url=url, timeout=120), call)


def run_mode(model: str, batching: bool, scale: float, images: list[bytes]) -> list[Result]:
    mode = "batching" if batching else "no batching"
    results = []
    with server(model, batching) as url:
        senders: dict[str, Callable[[httpx.Client, int], httpx.Response]] = {
            "text": lambda c, i: c.post("/embed/text", json={"text": f"a photo of item number {i} on a table"}),
            "image": lambda c, i: c.post("/embed/image", content=images[i % len(images)],
                                         headers={"content-type": "image/jpeg"}),
        }  # fmt: skip
        for kind in ("text", "image"):
            drive(url, senders[kind], 4, 4)  # warm-up: first calls allocate
            for concurrency in (1, 16):
                total = max(concurrency, round(REQUESTS[(kind, concurrency)] * scale))
                seconds, latencies = drive(url, senders[kind], total, concurrency)
                result = Result(mode, kind, concurrency, total, seconds, latencies)
                results.append(result)
                p50, p95 = result.percentile(0.5), result.percentile(0.95)
                rate = f"{result.rps:7.2f} req/s"
                print(
                    f"  {mode:12} {kind:5} c={concurrency:<3} {rate}  p50 {p50:6.0f} ms  p95 {p95:6.0f} ms", flush=True
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model, random weights (default ViT-B-32)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    args = parser.parse_args(argv)
    images = make_images(16)
    print(f"local server load test: {args.model} (random weights), {os.cpu_count()} CPUs", flush=True)
    results = run_mode(args.model, True, args.scale, images) + run_mode(args.model, False, args.scale, images)
    by_key = {(r.mode, r.kind, r.concurrency): r for r in results}
    print("\n| mode | input | concurrency | requests | req/s | p50 ms | p95 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r.mode} | {r.kind} | {r.concurrency} | {r.requests} | {r.rps:.2f} | "
              f"{r.percentile(0.5):.0f} | {r.percentile(0.95):.0f} |")  # fmt: skip
    print()
    for kind in ("text", "image"):
        for concurrency in (1, 16):
            on, off = by_key[("batching", kind, concurrency)], by_key[("no batching", kind, concurrency)]
            print(f"batching / no batching, {kind} c={concurrency}: {on.rps / off.rps:.2f}x throughput")
    ratio = by_key[("batching", "text", 16)].rps / by_key[("no batching", "text", 16)].rps
    print(f"target (texts, c=16, >= 3x): {'met' if ratio >= 3 else 'NOT met'} ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
