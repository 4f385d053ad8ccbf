"""ModelFunction as SAM's emulator runs it, beside the slim serving container on the same archive, in one run.

For each model (tiny-shapes; ViT-B-32 with seeded random weights, whose timings are a real ViT-B-32's):

- the image: ``sam build`` of the template with ModelFunction (EndpointKind function) on the Lambda python3.13
  equivalent, and its size as ``docker image inspect`` gives it;
- the cold start: ``sam local invoke`` with one text, ``--cold`` times; each run is a new container, and the
  emulator's REPORT gives Init and Duration (the emulator loads the model inside the first Duration, so their
  sum is the cold start);
- warm: ``sam local start-lambda`` (warm containers), one text and one 224 px JPEG per Invoke through boto3,
  ``--warm`` times each after one discarded call; the client's round trip p50 and the REPORT Duration p50
  (what Lambda bills);
- the baseline: the slim serving image (``docker run IMAGE serve``) with the same archive, the same requests
  one at a time on a kept-alive connection (c=1), p50;
- the cost per million at ``--memory-mb`` from the billed Durations, x86_64 list prices.

Goals printed beside the figures: tiny-shapes cold <= 2 s; ViT-B-32 cold <= 6 s; warm image p50 <= 1.2 x the
serving container's c=1 p50. The emulator does not cap the function's CPU at its memory size as Lambda does
(2048 MB is about 1.16 vCPUs there): its container may use every core of this machine, as the serving
container does. One run each; read the load average printed first.

    .venv/bin/python bench/model_function.py [--models tiny-shapes,ViT-B-32] [--cold 3] [--warm 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from endpoint_load import BENCH_DIR, body_for

from containers.base_images import lambda_runtime, python_slim
from containers.engine import Engine
from containers.model_function import build_with_model_function, image_size
from containers.sam import REPORT_LINE, SamCli
from containers.serving_image import SLIM_DOCKERFILE, SLIM_TAG, build_serving_image, run_as_sagemaker
from containers.serving_image import model_dir as tiny_model_dir
from omnisearch_ops.costs import LAMBDA_PRICE_PER_GB_SECOND, LAMBDA_PRICE_PER_REQUEST

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("tiny-shapes", "ViT-B-32")
COLD_GOAL_S = {"tiny-shapes": 2.0, "ViT-B-32": 6.0}
WARM_RATIO_GOAL = 1.2
AWS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def random_vit_model_dir(work: Path) -> Path:
    """ViT-B-32 with load_model's seeded random weights, packaged with its ONNX towers, no wheels (built once)."""
    archive = BENCH_DIR / "vit-b-32-random-nowheels.tar.gz"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        import torch

        from model_code.code import inference
        from omnisearch_ops.model_archive import build_archive

        weights = BENCH_DIR / "vit-b-32-random.pt"
        if not weights.is_file():
            clip = inference.load_model("ViT-B-32", "", device="cpu")
            torch.save(clip.model.state_dict(), weights)
            clip.pool.shutdown()
        build_archive("ViT-B-32", str(weights), archive, quick_gelu=False)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(work / "model", filter="data")
    return work / "model"


def wire(kind: str, n: int) -> dict[str, Any]:
    """The event the core sends ModelFunction: the endpoint's JSON request as itself."""
    return {"contentType": "application/json", "json": json.loads(body_for(kind, n))}


def p50(values: list[float]) -> float:
    return statistics.median(values)


def build(model_dir: Path, work: Path, manifest: dict[str, Any]) -> SamCli:
    pretrained = {"ClipPretrained": manifest["pretrained"]} if manifest["pretrained"] else {}
    return build_with_model_function(ROOT / ".venv-sam", lambda_runtime("x86_64"), model_dir, work,
                                     "bench-model-function", EndpointKind="function", ClipModel=manifest["model"],
                                     **pretrained)  # fmt: skip


def cold_starts(cli: SamCli, model_id: str, work: Path, runs: int) -> list[float]:
    """Init + first request (ms) of ``runs`` fresh containers under ``sam local invoke``."""
    event = work / "cold-event.json"
    event.write_text(json.dumps(wire("texts", 0)))
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": model_id}}
    starts = []
    for _ in range(runs):
        _answer, init_ms, duration_ms, _log = cli.invoke_raw("ModelFunction", event, env, work)
        starts.append(init_ms + duration_ms)
    return starts


def warm(cli: SamCli, model_id: str, work: Path, samples: int) -> dict[str, dict[str, float]]:
    """Client round trip and billed Duration p50s (ms), one text and one image per Invoke, warm containers."""
    env = {"ModelFunction": {"EXPECTED_MODEL_ID": model_id}}
    figures: dict[str, dict[str, float]] = {}
    with cli.serving("start-lambda", env, work) as url:
        client = boto3.client("lambda", endpoint_url=url, config=Config(read_timeout=300, retries={"max_attempts": 0}),
                              **AWS)  # fmt: skip
        log = work / "sam-start-lambda.log"
        for kind in ("texts", "images"):
            seen = len(REPORT_LINE.findall(log.read_text(errors="replace")))
            trips = []
            for n in range(samples + 1):
                payload = json.dumps(wire(kind, n)).encode()
                started = time.perf_counter()
                answer = client.invoke(FunctionName="ModelFunction", Payload=payload)
                body = answer["Payload"].read()
                trips.append((time.perf_counter() - started) * 1000)
                if "FunctionError" in answer:
                    raise RuntimeError(f"ModelFunction failed: {body[:500]!r}")
            time.sleep(1)  # the emulator writes REPORT lines after answering
            durations = [float(m[1]) for m in REPORT_LINE.findall(log.read_text(errors="replace"))[seen:]]
            figures[kind] = {"round_trip_p50_ms": p50(trips[1:]), "duration_p50_ms": p50(durations[1:])}
    return figures


def container_c1(image: str, model_dir: Path, samples: int) -> dict[str, float]:
    """The slim serving container's c=1 p50 (ms) over the same bodies, on one kept-alive connection."""
    figures = {}
    with run_as_sagemaker(image, model_dir) as running:
        host, port = running.url.removeprefix("http://").split(":")
        with closing(http.client.HTTPConnection(host, int(port), timeout=120)) as connection:
            for kind in ("texts", "images"):
                times = []
                for n in range(samples + 1):
                    started = time.perf_counter()
                    connection.request("POST", "/invocations", body=body_for(kind, n),
                                       headers={"Content-Type": "application/json"})  # fmt: skip
                    response = connection.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"the serving container answered {response.status}")
                    times.append((time.perf_counter() - started) * 1000)
                figures[kind] = p50(times[1:])
    return figures


def cost_per_million(duration_ms: float, memory_mb: int) -> float:
    """Lambda bills each request and its Duration rounded up to the millisecond, at the memory size."""
    billed_s = -(-duration_ms // 1) / 1000
    return 1e6 * (LAMBDA_PRICE_PER_REQUEST + billed_s * memory_mb / 1024 * LAMBDA_PRICE_PER_GB_SECOND["x86_64"])


def report(model: str, row: dict[str, Any], memory_mb: int) -> None:
    cold = row["cold_ms"]
    goal = COLD_GOAL_S[model]
    print(f"\n== {model} (x86_64) ==")
    print(f"image size: {row['image_mb']:.0f} MB")
    verdict = "met" if max(cold) <= goal * 1000 else "NOT met"
    print(f"cold start (Init + first request), {len(cold)} runs: min {min(cold):.0f} ms, p50 {p50(cold):.0f} ms, "
          f"max {max(cold):.0f} ms; goal <= {goal:.0f} s: {verdict}")  # fmt: skip
    for kind in ("texts", "images"):
        fn, c1 = row["warm"][kind], row["container_c1_ms"][kind]
        ratio = fn["round_trip_p50_ms"] / c1
        verdict = f"; goal <= {WARM_RATIO_GOAL}x: {'met' if ratio <= WARM_RATIO_GOAL else 'NOT met'}"
        print(f"warm {kind[:-1]} p50: round trip {fn['round_trip_p50_ms']:.1f} ms, billed Duration "
              f"{fn['duration_p50_ms']:.1f} ms; serving container c=1 {c1:.1f} ms; ratio {ratio:.2f}x"
              f"{verdict if kind == 'images' else ''}")  # fmt: skip
        print(f"  cost per million at {memory_mb} MB: ${cost_per_million(fn['duration_p50_ms'], memory_mb):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--cold", type=int, default=3, help="cold starts per model (default 3)")
    parser.add_argument("--warm", type=int, default=30, help="warm invokes per kind (default 30)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="the memory size priced (template: 2048)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "model_function.json")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if unknown := set(models) - set(MODELS):
        parser.error(f"unknown model: {sorted(unknown)}")
    flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))})
    print(f"machine: {os.cpu_count()} cores ({', '.join(flags)}), load average {os.getloadavg()[0]:.2f} at start")
    print("base images: Debian-built equivalents of the Lambda python3.13 image and of python:3.12-slim")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with Engine(BENCH_DIR / "dockerd"), tempfile.TemporaryDirectory(prefix="bench-model-function-") as tmp:
        slim = build_serving_image(python_slim(), SLIM_TAG, SLIM_DOCKERFILE)
        for model in models:
            work = Path(tmp) / model
            work.mkdir()
            model_dir = tiny_model_dir(None, work) if model == "tiny-shapes" else random_vit_model_dir(work)
            manifest = json.loads((model_dir / "clip_model.json").read_text())  # the archive's own model id
            model_id = manifest["model_id"]
            cli = build(model_dir, work, manifest)
            row = {
                "image_mb": image_size(cli.image_uris["ModelFunction"]) / 1e6,
                "cold_ms": cold_starts(cli, model_id, work, args.cold),
                "warm": warm(cli, model_id, work, args.warm),
                "container_c1_ms": container_c1(slim, model_dir, args.warm),
            }
            report(model, row, args.memory_mb)
            results[model] = row
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
