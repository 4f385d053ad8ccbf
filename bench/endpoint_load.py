"""Load test of the endpoint container: single-item invocations at concurrency 1, 16 and 64, req/s and p50/p95.

Two targets serve one model.tar.gz that scripts/package_model.py builds (ViT-B-32 with random weights, no
download), in one run: ``toolkit``, the stock AWS PyTorch inference container (the real SageMaker toolkit
+ TorchServe from .venv-serving, omnisearch_testkit/toolkit_harness.py), and ``endpoint-server``, our
serving container (``python -m endpoint_server serve``, dynamic batching across invocations), each with
template.yaml's container environment. Each request is one ``{"texts": [t]}`` or ``{"images": [jpeg]}``
(224 px) invocation with ``"encoding": "base64"`` on a kept-alive connection, as SageMakerBackend sends
them through the runtime. Ours serves with ONNX Runtime (``--engine``), the stock toolkit with torch eager
(``--toolkit-engine``), both from the same archive. Prints each target's table, then ours / the toolkit's
against the CPU goals (texts c=16 >= 3x, images c=16 >= 2x, p50 at c=1 <= 1.1x), and the toolkit archive's
size and its time from start to the first answer, offline.

A *target* is a function ``(workdir, extra_env) -> context manager yielding the container's base URL``
(``/ping``, ``/invocations``); register more in TARGETS. ``--omp-threads N`` adds OMP_NUM_THREADS=N to
every server's environment: on a small, busy VM torch's default (one thread per core) spins against the
client threads and can cost 10x per request.

    .venv/bin/python bench/endpoint_load.py [--quick] [--targets toolkit,endpoint-server] [--kinds texts,images]
        [--requests 1=40,16=160] [--omp-threads 1]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from client_load import run_clients

from omnisearch_testkit.toolkit_harness import start_toolkit, template_model_env

ROOT = Path(__file__).resolve().parents[1]

BENCH_DIR = ROOT / "build" / "bench"
MODEL = "ViT-B-32"
REQUESTS = {1: 60, 16: 240, 64: 512}
QUICK_REQUESTS = {1: 12, 16: 48, 64: 128}
GOALS = {("texts", 16): 3.0, ("images", 16): 2.0}  # ours / toolkit req/s; and p50 at c=1 <= P50_GOAL x
P50_GOAL = 1.1
ENGINES = ("onnxruntime", "torch", "auto")  # CLIP_ENGINE; the archive carries both towers as ONNX
WARMUP = 3
Target = Callable[[Path, dict[str, str]], AbstractContextManager[str]]
facts: dict[str, float | str] = {}  # archive size, start-to-first-answer: filled by the targets


def random_vit_archive() -> Path:
    """ViT-B-32 with load_model's seeded random weights, packaged with its offline wheels (built once)."""
    archive = BENCH_DIR / "vit-b-32-random-onnx.tar.gz"  # with the ONNX towers (older builds had none)
    if archive.is_file():
        return archive
    import torch

    from model_code.code import inference
    from omnisearch_ops import package_model, wheels

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    weights = BENCH_DIR / "vit-b-32-random.pt"
    clip = inference.load_model(MODEL, "", device="cpu")
    torch.save(clip.model.state_dict(), weights)
    clip.pool.shutdown()
    house = wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text(), say=package_model.say)
    return package_model.build_archive(MODEL, str(weights), archive, wheels=house, quick_gelu=False)


@contextmanager
def toolkit_target(workdir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """The stock container: the SageMaker PyTorch toolkit and TorchServe, template.yaml's environment."""
    archive = random_vit_archive()
    facts["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
    with start_toolkit(archive, workdir / "toolkit", {**template_model_env(), **extra_env}) as toolkit:
        invoke(toolkit.url, "first answer")  # /ping is 200 before the worker has loaded the model
        facts["start_to_first_answer_s"] = round(time.monotonic() - toolkit.started_at, 1)
        yield toolkit.url


@contextmanager
def endpoint_server_target(workdir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """Our container: ``python -m endpoint_server serve`` on the same archive, unpacked as SageMaker does."""
    model = workdir / "endpoint-server" / "model"
    if not model.is_dir():
        with tarfile.open(random_vit_archive(), "r:gz") as tar:
            tar.extractall(model, filter="data")
    env = {**os.environ, **template_model_env(), **extra_env}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    command = [sys.executable, "-m", "endpoint_server", "serve", "--host", "127.0.0.1", "--port", "0"]
    log = open(workdir / "endpoint-server.log", "w")  # noqa: SIM115 - closed after the process
    process = subprocess.Popen([*command, "--model-dir", str(model)], env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        line = process.stdout.readline().decode()
        url = f"http://127.0.0.1:{line.split(' on port ')[1].split()[0]}" if " on port " in line else ""
        deadline = time.monotonic() + 300
        while not url or _status(url + "/ping") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint_server did not become healthy; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()


def _status(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", parts.path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


TARGETS: dict[str, Target] = {"toolkit": toolkit_target, "endpoint-server": endpoint_server_target}


def sample_jpeg(n: int) -> bytes:
    """A 224 px JPEG, different for each request (a gradient shifted by n), as a photo a client uploads."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((224, 224)).rotate(n % 360).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def body_for(kind: str, n: int) -> bytes:
    if kind == "images":
        return json.dumps({"images": [base64.b64encode(sample_jpeg(n)).decode()], "encoding": "base64"}).encode()
    return json.dumps({"texts": [f"a photo of object number {n} on a table"], "encoding": "base64"}).encode()


def invoke(url: str, text: str | bytes, connection: http.client.HTTPConnection | None = None) -> float:
    """One invocation (a text, or a ready body); its latency in seconds. Raises on anything but a 200."""
    own = connection is None
    if connection is None:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    body = text if isinstance(text, bytes) else json.dumps({"texts": [text], "encoding": "base64"}).encode()
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
    kind: str
    concurrency: int
    latencies: list[float]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1] * 1000


def load(url: str, concurrency: int, requests: int, kind: str = "texts") -> Result:
    """``requests`` single-item invocations from ``concurrency`` threads, one kept-alive connection each."""
    bodies = [body_for(kind, n) for n in range(requests)]  # built before the clock starts
    parts = urllib.parse.urlsplit(url)

    def connect() -> closing[http.client.HTTPConnection]:
        return closing(http.client.HTTPConnection(parts.hostname, parts.port, timeout=120))

    def warm_up(connection: http.client.HTTPConnection) -> None:
        for _ in range(WARMUP if concurrency == 1 else 1):
            invoke(url, body_for(kind, 10**6), connection)

    seconds, latencies = run_clients(
        concurrency, requests, connect, lambda connection, n: invoke(url, bodies[n], connection), warm_up
    )
    return Result(kind, concurrency, latencies, seconds)


def parse_requests(text: str) -> dict[int, int]:
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {int(c): int(n) for c, n in pairs}


def report(name: str, results: list[Result]) -> None:
    print(f"target {name}: {MODEL} random weights, single-item invocations")
    print(f"{'kind':>6}  {'concurrency':>11}  {'requests':>8}  {'req/s':>7}  {'p50 ms':>7}  {'p95 ms':>7}")
    for r in results:
        print(f"{r.kind:>6}  {r.concurrency:>11}  {len(r.latencies):>8}  {r.rps:>7.1f}  {r.percentile(0.5):>7.1f}  "
              f"{r.percentile(0.95):>7.1f}")  # fmt: skip


def compare(runs: dict[str, list[Result]], ours: str = "endpoint-server", base: str = "toolkit") -> None:
    """Ours / the toolkit's, case by case, with the goals marked."""
    if ours not in runs or base not in runs:
        return
    theirs = {(r.kind, r.concurrency): r for r in runs[base]}
    print(f"{ours} / {base}:")
    for r in runs[ours]:
        other = theirs.get((r.kind, r.concurrency))
        if other is None:
            continue
        line = f"  {r.kind} c={r.concurrency}: req/s {r.rps / other.rps:.2f}x"
        if (goal := GOALS.get((r.kind, r.concurrency))) is not None:
            line += f" (goal >= {goal:g}x: {'met' if r.rps / other.rps >= goal else 'NOT met'})"
        if r.concurrency == 1:
            ratio = r.percentile(0.5) / other.percentile(0.5)
            line += f"; p50 {ratio:.2f}x (goal <= {P50_GOAL:g}x: {'met' if ratio <= P50_GOAL else 'NOT met'})"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="toolkit,endpoint-server", help=f"comma-separated: {sorted(TARGETS)}")
    parser.add_argument("--kinds", default="texts,images", help="comma-separated: texts, images")
    parser.add_argument("--quick", action="store_true", help=f"few requests: {QUICK_REQUESTS}")
    parser.add_argument("--requests", type=parse_requests, help="concurrency=count,... (default 1=60,16=240,64=512)")
    parser.add_argument("--omp-threads", type=int, help="OMP_NUM_THREADS for the servers (default: their own)")
    parser.add_argument(
        "--engine", default="onnxruntime", choices=ENGINES, help="CLIP_ENGINE of endpoint-server (ours)"
    )
    parser.add_argument(
        "--toolkit-engine", default="torch", choices=ENGINES, help="CLIP_ENGINE of the toolkit (stock: torch)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "endpoint_load.json")
    args = parser.parse_args(argv)
    targets, kinds = args.targets.split(","), args.kinds.split(",")
    if unknown := (set(targets) - set(TARGETS)) | (set(kinds) - {"texts", "images"}):
        parser.error(f"unknown target or kind: {sorted(unknown)}")
    plan = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    extra_env = {"OMP_NUM_THREADS": str(args.omp_threads)} if args.omp_threads else {}
    facts["omp_threads"] = args.omp_threads or "default"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Result]] = {}
    engines = {"toolkit": args.toolkit_engine, "endpoint-server": args.engine}
    for name in targets:
        facts[f"{name}_engine"] = engines.get(name, "auto")
        with TARGETS[name](BENCH_DIR / "run", {**extra_env, "CLIP_ENGINE": engines.get(name, "auto")}) as url:
            runs[name] = [load(url, c, n, kind) for kind in kinds for c, n in sorted(plan.items())]
    for name, results in runs.items():
        report(name, results)
    for name, value in facts.items():
        print(f"  {name}: {value}")
    compare(runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        name: [{"kind": r.kind, "concurrency": r.concurrency, "requests": len(r.latencies), "rps": round(r.rps, 2),
                "p50_ms": round(r.percentile(0.5), 1), "p95_ms": round(r.percentile(0.95), 1)} for r in results]
        for name, results in runs.items()
    }  # fmt: skip
    args.output.write_text(json.dumps({"model": MODEL, **facts, "results": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
