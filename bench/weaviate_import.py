"""A Weaviate batch import, replayed: one ``POST /vectorize`` per object, 2 x Weaviate's CPU count at once.

That is what ``multi2vec-clip`` does (``batch_simple.go``: ``eg.SetLimit(_NUMCPU * 2)``, one call per
object). Starts ``python -m local_server`` (ViT-B-32, random weights) with dynamic batching on and off,
imports caption-only and caption+image objects, and prints objects/s, latency and how many model calls the
batcher made (from ``/health``). Quick check: ``--model tiny-shapes --scale 0.25``.

    .venv/bin/python bench/weaviate_import.py [--model ViT-B-32] [--scale 1.0] [--weaviate-cpus 8]
"""

from __future__ import annotations

import argparse
import base64
import os
from typing import Any

import httpx
from local_server_load import drive, make_images, server  # same folder: run as a script

OBJECTS = {"caption": 128, "caption+image": 48}  # objects per run at --scale 1


def batching_stats(url: str) -> dict[str, Any]:
    backend = httpx.get(f"{url}/health", timeout=30).json()["backend"]
    return backend.get("batching", {})


def run(model: str, batching: bool, scale: float, concurrency: int, images: list[str]) -> list[dict[str, Any]]:
    rows = []
    with server(model, batching) as url:
        bodies = {
            "caption": lambda i: {"texts": [f"a photo of item number {i} on a table"]},
            "caption+image": lambda i: {"texts": [f"item {i}"], "images": [images[i % len(images)]]},
        }
        for kind, count in OBJECTS.items():
            total = max(concurrency, round(count * scale))

            def send(client: httpx.Client, i: int, kind: str = kind) -> httpx.Response:
                return client.post("/vectorize", json=bodies[kind](i))

            drive(url, send, 4, 4)  # warm-up
            before = batching_stats(url)
            seconds, latencies = drive(url, send, total, concurrency)
            after = batching_stats(url)
            calls = after.get("calls", 0) - before.get("calls", 0) if batching else None
            ordered = sorted(latencies)
            rows.append({
                "mode": "batching" if batching else "no batching", "objects": kind, "count": total,
                "rate": total / seconds, "p50": ordered[len(ordered) // 2] * 1000,
                "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000, "calls": calls,
            })  # fmt: skip
            row, shown = rows[-1], "-" if calls is None else calls
            print(f"  {row['mode']:12} {kind:14} {row['rate']:7.2f} objects/s  p50 {row['p50']:6.0f} ms  "
                  f"p95 {row['p95']:6.0f} ms  model calls {shown}", flush=True)  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model, random weights (default ViT-B-32)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the object counts")
    parser.add_argument("--weaviate-cpus", type=int, default=8, help="Weaviate's GOMAXPROCS (concurrency = 2x)")
    args = parser.parse_args(argv)
    concurrency = 2 * args.weaviate_cpus
    images = [base64.b64encode(data).decode() for data in make_images(8)]
    print(f"Weaviate import replay: {args.model}, concurrency {concurrency}, {os.cpu_count()} CPUs here", flush=True)
    rows = run(args.model, True, args.scale, concurrency, images) + run(
        args.model, False, args.scale, concurrency, images
    )
    print("\n| mode | objects | count | objects/s | p50 ms | p95 ms | model calls |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        calls = "-" if r["calls"] is None else r["calls"]
        print(f"| {r['mode']} | {r['objects']} | {r['count']} | {r['rate']:.2f} | {r['p50']:.0f} | {r['p95']:.0f} "
              f"| {calls} |")  # fmt: skip
    by_key = {(r["mode"], r["objects"]): r for r in rows}
    for kind in OBJECTS:
        on, off = by_key[("batching", kind)], by_key[("no batching", kind)]
        print(f"{kind}: batching / no batching {on['rate'] / off['rate']:.2f}x objects/s; "
              f"{on['count']} objects in {on['calls']} model calls")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
