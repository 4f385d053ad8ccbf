"""Load test of the endpoint container: single-text invocations at concurrency 1 and 16, req/s and p50/p95.

The baseline is the stock AWS PyTorch inference container: the real SageMaker toolkit + TorchServe
(tests/serving_stack/toolkit_harness.py, from .venv-serving) serving a model.tar.gz that
scripts/package_model.py builds, ViT-B-32 with random weights (no download), with template.yaml's
container environment (one worker, its timeouts). Each request is one ``{"texts": [...]}`` invocation on
a kept-alive connection, as the SageMaker runtime sends them. Also prints the archive's size and the time
from start to the first answer, offline (pip reaches no index).

A *target* is a function ``(workdir, extra_env) -> context manager yielding the container's base URL``
(``/ping``, ``/invocations``); register more in TARGETS to compare other servers on the same archive and
load. ``--omp-threads N`` adds OMP_NUM_THREADS=N to the server's environment: on a small, busy VM torch's
default (one thread per core) spins against the client threads and can cost 10x per request.

    .venv/bin/python bench/endpoint_load.py [--quick] [--target toolkit] [--requests 1=40,16=160] [--omp-threads 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "common", ROOT, ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.serving_stack.toolkit_harness import start_toolkit, template_model_env  # noqa: E402

BENCH_DIR = ROOT / "build" / "bench"
MODEL = "ViT-B-32"
REQUESTS = {1: 60, 16: 240}
QUICK_REQUESTS = {1: 12, 16: 48}
WARMUP = 3
Target = Callable[[Path, dict[str, str]], AbstractContextManager[str]]
facts: dict[str, float | str] = {}  # archive size, start-to-first-answer: filled by the targets


def random_vit_archive() -> Path:
    """ViT-B-32 with load_model's seeded random weights, packaged with its offline wheels (built once)."""
    archive = BENCH_DIR / "vit-b-32-random.tar.gz"
    if archive.is_file():
        return archive
    import _wheels
    import package_model
    import torch

    from model_code.tiny_shapes import load_inference

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    weights = BENCH_DIR / "vit-b-32-random.pt"
    clip = load_inference().load_model(MODEL, "", device="cpu")
    torch.save(clip.model.state_dict(), weights)
    clip.pool.shutdown()
    house = _wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text(), say=package_model.say)
    return package_model.build_archive(MODEL, str(weights), archive, wheels=house)


@contextmanager
def toolkit_target(workdir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """The stock container: the SageMaker PyTorch toolkit and TorchServe, template.yaml's environment."""
    archive = random_vit_archive()
    facts["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
    with start_toolkit(archive, workdir / "toolkit", {**template_model_env(), **extra_env}) as toolkit:
        invoke(toolkit.url, "first answer")  # /ping is 200 before the worker has loaded the model
        facts["start_to_first_answer_s"] = round(time.monotonic() - toolkit.started_at, 1)
        yield toolkit.url


TARGETS: dict[str, Target] = {"toolkit": toolkit_target}


def invoke(url: str, text: str, connection: http.client.HTTPConnection | None = None) -> float:
    """One single-text invocation; its latency in seconds. Raises on anything but a 200."""
    own = connection is None
    if connection is None:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    body = json.dumps({"texts": [text], "encoding": "base64"}).encode()
    started = time.perf_counter()
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        if own:
            connection.close()
    if response.status != 200:
        raise RuntimeError(f"invocation answered {response.status}: {payload[:200]!r}")
    return time.perf_counter() - started


@dataclass
class Result:
    concurrency: int
    latencies: list[float]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1] * 1000


def load(url: str, concurrency: int, requests: int) -> Result:
    """``requests`` single-text invocations from ``concurrency`` threads, one kept-alive connection each."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    parts = urllib.parse.urlsplit(url)

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            for _ in range(WARMUP if concurrency == 1 else 1):
                invoke(url, "warm up", connection)
            barrier.wait()
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                took = invoke(url, f"a photo of object number {n} on a table", connection)
                with lock:
                    latencies.append(took)
        except BaseException as e:  # reported after the run, never swallowed
            errors.append(e)
            barrier.abort()
        finally:
            connection.close()

    barrier = threading.Barrier(concurrency + 1)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} client thread(s) failed: {errors[0]!r}")
    return Result(concurrency, latencies, seconds)


def parse_requests(text: str) -> dict[int, int]:
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {int(c): int(n) for c, n in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="toolkit")
    parser.add_argument("--quick", action="store_true", help=f"few requests: {QUICK_REQUESTS}")
    parser.add_argument("--requests", type=parse_requests, help="concurrency=count,... (default 1=60,16=240)")
    parser.add_argument("--omp-threads", type=int, help="OMP_NUM_THREADS for the server (default: its own)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "endpoint_load.json")
    args = parser.parse_args(argv)
    plan = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    extra_env = {"OMP_NUM_THREADS": str(args.omp_threads)} if args.omp_threads else {}
    facts["omp_threads"] = args.omp_threads or "default"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with TARGETS[args.target](BENCH_DIR / "run", extra_env) as url:
        results = [load(url, concurrency, count) for concurrency, count in sorted(plan.items())]
    print(f"target {args.target}: {MODEL} random weights, single-text invocations")
    for name, value in facts.items():
        print(f"  {name}: {value}")
    print(f"{'concurrency':>11}  {'requests':>8}  {'req/s':>7}  {'p50 ms':>7}  {'p95 ms':>7}")
    for r in results:
        print(f"{r.concurrency:>11}  {len(r.latencies):>8}  {r.rps:>7.1f}  {r.percentile(0.5):>7.1f}  "
              f"{r.percentile(0.95):>7.1f}")  # fmt: skip
    if len(results) > 1:
        print(f"req/s at concurrency {results[-1].concurrency} / {results[0].concurrency}: "
              f"{results[-1].rps / results[0].rps:.2f}x")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figures = [
        {"concurrency": r.concurrency, "requests": len(r.latencies), "rps": round(r.rps, 2),
         "p50_ms": round(r.percentile(0.5), 1), "p95_ms": round(r.percentile(0.95), 1)}
        for r in results
    ]  # fmt: skip
    args.output.write_text(json.dumps({"target": args.target, "model": MODEL, **facts, "results": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
