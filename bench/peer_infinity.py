"""Side by side with the peer to beat: our local server against infinity-emb, same model, same client, one run.

Both servers serve CLIP ViT-B/32 with random weights on the CPU, fp32, under the same OpenMP/MKL thread
settings: ours as ``python -m local_server --model ViT-B-32-quickgelu --pretrained ""`` (open_clip's
ViT-B/32 with OpenAI's QuickGELU, the architecture of the openai checkpoint), infinity as the recipe's
``infinity_emb v2`` over ``$PEER/clip-b32`` (transformers' CLIPModel with the same configuration, built by
the recipe's make_model.py). Each gets the same requests through its OpenAI-style endpoint (ours
``/v1/embeddings``, infinity's ``/embeddings``; images as ``data:image/jpeg;base64`` URIs with
``"modality": "image"``) from the same client: threads, one ``requests.Session`` each, as the recipe's
own benchmark drives infinity. Within a case the two servers take turns (which one starts alternates from
case to case), so a drift in the machine's load hits both.

Ratios are ours ÷ infinity in items per second. The peer's recipe (venv, model folder) is in
``../shared/peer-infinity/README.md``; point ``--peer`` (or ``PEER``) at the folder it built. A benchmark,
not a test: CI never runs it.

    .venv/bin/python bench/peer_infinity.py --quick        # about 3 minutes on 2 cores
    .venv/bin/python bench/peer_infinity.py                # the full counts, about 12 minutes
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import requests
from client_load import run_clients
from peer_servers import OUR_MODEL, PEER_MODEL, Server, infinity_server, our_server
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DIMENSION = 512

ADJ = ["small", "large", "fluffy", "red", "old", "sleepy", "happy", "wet", "striped", "tiny"]
NOUN = ["cat", "dog", "car", "house", "tree", "boat", "bird", "horse", "bicycle", "mountain"]
PLACE = ["on the beach", "in a park", "at night", "in the snow", "on a table", "in the city"]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "text" | "image"
    per_request: int
    concurrency: int
    requests: int  # at full scale
    goal: float  # ours / infinity, items per second


CASES = [
    Case("single text", "text", 1, 1, 200, 1.5),
    Case("single text", "text", 1, 16, 200, 1.5),
    Case("single 224 px JPEG", "image", 1, 1, 100, 1.8),
    Case("single 224 px JPEG", "image", 1, 16, 100, 1.3),
    Case("32 texts per request", "text", 32, 1, 30, 1.3),
]


def caption(i: int) -> str:
    """The recipe's captions: 10-14 CLIP tokens, under infinity's 20-token cut."""
    return f"a photo of a {ADJ[i % 10]} {NOUN[(i // 10) % 10]} {PLACE[(i // 100) % 6]}, number {i}"


def make_jpeg(seed: int, size: int = 224, quality: int = 90) -> bytes:
    """The recipe's photo-like synthetic image: gradients, blobs and mild noise, JPEG q90 (~17 KiB)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        a, b, ph = rng.uniform(0.5, 4, 3)
        img[..., c] = 0.5 + 0.25 * np.sin(2 * np.pi * (a * x + b * y) + ph)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        img[((x - cx) ** 2 + (y - cy) ** 2) < r * r] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape)
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# -- load -----------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    server: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    items_per_s: float
    server_cpu_s: float


Payload = Callable[[str, int], dict]


def payloads(case: Case, uris: list[str]) -> Payload:
    if case.kind == "image":
        return lambda model, i: {"model": model, "input": [uris[i % len(uris)]], "modality": "image"}
    n = case.per_request
    return lambda model, i: {"model": model, "input": [caption(i * n + k) for k in range(n)]}


def drive(server: Server, case: Case, make: Payload, total: int, max_seconds: float) -> Measured:
    """``total`` requests (or as many as fit in ``max_seconds``) from ``case.concurrency`` client threads."""
    with requests.Session() as warm:
        for i in range(3):  # unmeasured: first calls allocate
            warm.post(server.url, json=make(server.model, 10_000_000 + i), timeout=300).raise_for_status()

    def call(session: requests.Session, i: int) -> float:
        began = time.perf_counter()
        response = session.post(server.url, json=make(server.model, i), timeout=300)
        elapsed = time.perf_counter() - began
        data = response.json().get("data") if response.status_code == 200 else None
        if data is None or len(data) != case.per_request or len(data[0]["embedding"]) != DIMENSION:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        return elapsed

    cpu = server.cpu_seconds()
    try:
        seconds, latencies = run_clients(case.concurrency, total, requests.Session, call, max_seconds=max_seconds)
    except RuntimeError as e:
        raise RuntimeError(f"{server.name}, {case.name} c={case.concurrency}: {e}") from e
    ordered = sorted(latencies)
    return Measured(
        server=server.name,
        requests=len(latencies),
        seconds=seconds,
        p50_ms=statistics.median(ordered) * 1e3,
        p95_ms=ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1e3,
        items_per_s=len(latencies) * case.per_request / seconds,
        server_cpu_s=server.cpu_seconds() - cpu,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", default=os.environ.get("PEER", ""), help="the recipe's folder (default $PEER)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, 15 s per case")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time cap per case and server")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP/MKL threads, both servers")
    parser.add_argument("--ours", default="", help="extra flags for python -m local_server (one string)")
    parser.add_argument(
        "--engine",
        default="onnxruntime",
        choices=["onnxruntime", "torch", "auto"],
        help="ours: CLIP_ENGINE (default onnxruntime: the towers exported once into build/onnx-cache)",
    )
    parser.add_argument("--ours-env", action="append", default=[], metavar="NAME=VALUE", help="env for ours")
    parser.add_argument("--only", choices=["ours", "infinity"], help="run one server alone (no ratios)")
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME:C",
        help="run only these cases (e.g. 'single text:16'; repeatable); default all",
    )
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.max_seconds = args.scale / 10, min(args.max_seconds, 15.0)
    if not args.peer and args.only != "ours":
        parser.error("--peer (or PEER) must name the folder the peer-infinity recipe built")
    uris = ["data:image/jpeg;base64," + base64.b64encode(make_jpeg(s)).decode() for s in range(32)]
    env_extra = {"CLIP_ENGINE": args.engine, **dict(item.split("=", 1) for item in args.ours_env)}
    print(
        f"peer benchmark: {OUR_MODEL} (ours) and {PEER_MODEL} (infinity), random weights, fp32 CPU, "
        f"{args.threads} OMP/MKL threads each, {os.cpu_count()} CPUs; ours with {args.ours or 'defaults'} "
        f"{env_extra or ''}; OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')} (ours sets PASSIVE "
        f"unless given); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: list[dict] = []
    with contextlib.ExitStack() as stack:
        servers: list[Server] = []  # both up for the whole run; one serves while the other idles
        if args.only != "ours":
            servers.append(stack.enter_context(infinity_server(Path(args.peer), args.threads)))
        if args.only != "infinity":
            servers.append(stack.enter_context(our_server(args.threads, args.ours.split(), env_extra)))
        chosen = [c for c in CASES if not args.case or f"{c.name}:{c.concurrency}" in args.case]
        if not chosen:
            parser.error(f"--case matches none of {[f'{c.name}:{c.concurrency}' for c in CASES]}")
        for n, case in enumerate(chosen):
            total = max(case.concurrency, round(case.requests * args.scale))
            turn = servers if n % 2 == 0 else servers[::-1]
            figures = {s.name: drive(s, case, payloads(case, uris), total, args.max_seconds) for s in turn}
            for m in figures.values():
                print(
                    f"  {case.name:<22} c={case.concurrency:<3} {m.server:<9} n={m.requests:<4} "
                    f"{m.items_per_s:8.2f} items/s  p50 {m.p50_ms:7.1f} ms  p95 {m.p95_ms:7.1f} ms  "
                    f"(server cpu {m.server_cpu_s:.1f} s in {m.seconds:.1f} s)",
                    flush=True,
                )
            ratio = figures["ours"].items_per_s / figures["infinity"].items_per_s if len(figures) == 2 else None
            results.append({"case": asdict(case), "ratio": ratio, **{k: asdict(v) for k, v in figures.items()}})
    if args.only is None:
        print("\n| case | c | ours items/s | infinity items/s | ours p50 ms | infinity p50 ms | ratio | goal |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in results:
            case, ours, peer = r["case"], r["ours"], r["infinity"]
            met = "met" if r["ratio"] >= case["goal"] else "NOT met"
            print(
                f"| {case['name']} | {case['concurrency']} | {ours['items_per_s']:.2f} | {peer['items_per_s']:.2f} | "
                f"{ours['p50_ms']:.0f} | {peer['p50_ms']:.0f} | {r['ratio']:.2f}x | >= {case['goal']}x {met} |"
            )
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
