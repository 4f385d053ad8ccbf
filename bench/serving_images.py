"""Serving images side by side, in one run, over the same archives (tiny-shapes; ViT-B-32 with random weights):

- ``slim``: endpoint_server/Dockerfile.cpu on the python:3.12-slim equivalent (ONNX Runtime, no torch);
- ``dlc``: endpoint_server/Dockerfile on the DLC stand-in (today's image; the archive's ONNX towers serve too);
- ``toolkit``: the stock SageMaker PyTorch toolkit + TorchServe from .venv-serving (``make serving-venv``), run as
  a process (omnisearch_testkit/toolkit_harness.py): the DLC it ships in cannot be pulled here. CLIP_ENGINE=torch
  (``--toolkit-engine``), as the stock container serves; it installs the archive's wheels offline at each start.

Each container runs as SageMaker runs it (``docker run IMAGE serve``, the archive unpacked read-only at
/opt/ml/model, template.yaml's container environment); the archive's files are read once before each start, so
every target finds them in the page cache. Figures: the image's size without the model (docker image
inspect); seconds from ``docker run`` (the toolkit: launching ``serve``) to the first /ping 200 and to the first
answer; the RSS of the server's processes (VmRSS summed over them) after load (at the first answer),
after the first tenth of the requests and after them all (single-item invocations, texts and 224 px JPEGs
alternately, 4 clients on kept-alive connections); req/s. Goals beside them: slim image <= 500 MB; ViT-B-32
``docker run`` -> first answer <= 3 s (the toolkit: ~19 s); RSS <= 1.2 x the ONNX files' size + 150 MB, and
flat (<= 5 % growth from the first tenth of the requests to the end). The base images are Debian-built
equivalents (containers/base_images.py), not the official python:3.12-slim nor AWS's DLC. One run each: on a
shared machine, read the load average printed first. Everything started is stopped by its container id, process
group or PID (dockerd only when it was started here).

    .venv/bin/python bench/serving_images.py [--quick] [--models tiny-shapes,ViT-B-32] [--targets slim,dlc,toolkit]
        [--requests 1000] [--toolkit-engine torch]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tarfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from client_load import run_clients
from endpoint_load import BENCH_DIR, body_for, invoke, random_vit_archive

from containers.engine import Engine, docker
from containers.processes import tree
from containers.serving_image import SLIM_DOCKERFILE, SLIM_TAG, build_serving_image, run_as_sagemaker
from omnisearch_testkit.toolkit_harness import missing_reason, start_toolkit, template_model_env

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("tiny-shapes", "ViT-B-32")
TARGETS = ("slim", "dlc", "toolkit")
REQUESTS, QUICK_REQUESTS = 1000, 100
CONCURRENCY = 4
SLIM_GOAL_MB, FIRST_ANSWER_GOAL_S, FLAT_GOAL = 500, 3.0, 0.05
MB = 1000**2  # bytes: docker's MB, used alike for image sizes, RSS and the ONNX files


def tiny_archive() -> Path:
    """tiny-shapes with its ONNX towers and offline wheels (the toolkit installs them at start); built once."""
    archive = BENCH_DIR / "tiny-shapes-onnx.tar.gz"
    if not archive.is_file():
        from omnisearch_ops import package_model, wheels

        house = wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text(), say=package_model.say)
        package_model.build_archive("tiny-shapes", "", archive, wheels=house)
    return archive


def unpacked(archive: Path) -> Path:
    """The archive unpacked as SageMaker unpacks it, written to disk before any start: a start must not share
    the disk with the write-back of a gigabyte just unpacked."""
    target = BENCH_DIR / "serving-images" / archive.name.removesuffix(".tar.gz")
    if not target.is_dir():
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")
        os.sync()
    return target


def read_once(model: Path) -> None:
    """Every file of the model read once, so that each target starts with it in the page cache alike."""
    for path in sorted(model.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass


Members = Callable[[], list[int]]  # the PIDs of a server's processes now


def in_tree(pid: int) -> Members:
    """A container's server: its first process and what that started."""
    return lambda: [process.pid for process in tree(pid)]


def in_group(pgid: int) -> Members:
    """The toolkit: TorchServe's Java leaves ``serve``'s tree (its parent becomes init) but stays in its group."""

    def members() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split() if entry.name.isdigit() else []
            except OSError:
                continue
            if fields and int(fields[2]) == pgid:
                found.append(int(entry.name))
        return found

    return members


def rss_mb(members: Members) -> float:
    """VmRSS summed over the server's processes."""
    total = 0
    for pid in members():
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), 0)
    return total * 1024 / MB


def ping_status(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def wait_ping(url: str, timeout: float = 300, alive: Callable[[], bool] = lambda: True) -> None:
    """Until /ping answers 200, polled every 50 ms (the figure's resolution); raises once ``alive()`` is False."""
    deadline = time.monotonic() + timeout
    while ping_status(url) != 200:
        if time.monotonic() > deadline or not alive():
            raise RuntimeError(f"{url}/ping did not answer 200")
        time.sleep(0.05)


@contextmanager
def container(image: str, model: Path, env: dict[str, str]) -> Iterator[tuple[str, Members, dict[str, float]]]:
    """The image run as SageMaker runs it; yields (url, its processes, start timings)."""
    started = time.monotonic()
    with run_as_sagemaker(image, model, env=env, healthy=False, stop_grace=10) as running:
        pid = int(docker("inspect", "--format", "{{.State.Pid}}", running.container_id).strip())
        wait_ping(running.url, alive=Path(f"/proc/{pid}").exists)
        timings = {"ping_s": time.monotonic() - started}
        invoke(running.url, "first answer")
        timings["answer_s"] = time.monotonic() - started
        timings["rss_load_mb"] = rss_mb(in_tree(pid))
        yield running.url, in_tree(pid), timings


@contextmanager
def toolkit(archive: Path, env: dict[str, str]) -> Iterator[tuple[str, Members, dict[str, float]]]:
    """The stock toolkit as a process (start_toolkit polls /ping every 0.5 s: its figure is that coarse)."""
    with start_toolkit(archive, BENCH_DIR / "serving-images" / "toolkit", env) as running:
        timings = {"ping_s": time.monotonic() - running.started_at}
        invoke(running.url, "first answer")  # TorchServe answers /ping before its worker has loaded the model
        timings["answer_s"] = time.monotonic() - running.started_at
        timings["rss_load_mb"] = rss_mb(in_group(running.process.pid))
        yield running.url, in_group(running.process.pid), timings


def mixed_load(url: str, members: Members, requests: int) -> dict[str, float]:
    """``requests`` single-item invocations, texts and images alternately; RSS after each tenth of them."""
    bodies = [body_for("images" if n % 2 else "texts", n) for n in range(requests)]
    parts = urllib.parse.urlsplit(url)

    def connect() -> closing[http.client.HTTPConnection]:
        return closing(http.client.HTTPConnection(parts.hostname, parts.port, timeout=120))

    rss, seconds, chunk = [], 0.0, max(1, requests // 10)
    for start in range(0, requests, chunk):
        part = bodies[start : start + chunk]
        took, _ = run_clients(
            CONCURRENCY, len(part), connect, lambda session, n, part=part: invoke(url, part[n], session)
        )
        seconds += took
        rss.append(rss_mb(members))
    return {"rss_tenth_mb": rss[0], "rss_end_mb": rss[-1], "rss_max_mb": max(rss), "rps": requests / seconds}


def measure(target: str, images: dict[str, str], archive: Path, requests: int, toolkit_engine: str) -> dict:
    env = template_model_env()
    read_once(unpacked(archive))
    if target == "toolkit":
        run = toolkit(archive, {**env, "CLIP_ENGINE": toolkit_engine})
    else:
        run = container(images[target], unpacked(archive), env)
    with run as (url, members, figures):
        figures.update(mixed_load(url, members, requests))
    if target != "toolkit":
        figures["image_mb"] = int(docker("image", "inspect", "--format", "{{.Size}}", images[target])) / MB
    return figures


def report(model: str, onnx_mb: float, requests: int, rows: dict[str, dict]) -> None:
    print(f"\n{model}: ONNX files {onnx_mb:.0f} MB; {requests} mixed single-item invocations, {CONCURRENCY} clients")
    print(f"{'target':>8}  {'image MB':>8}  {'-> ping s':>9}  {'-> answer s':>11}  {'RSS load':>8}  "
          f"{'RSS 1/10':>8}  {'RSS end':>8}  {'growth':>7}  {'req/s':>6}")  # fmt: skip
    for name, f in rows.items():
        image = f"{f['image_mb']:8.0f}" if "image_mb" in f else f"{'process':>8}"
        growth = f["rss_end_mb"] / f["rss_tenth_mb"] - 1
        print(f"{name:>8}  {image}  {f['ping_s']:9.2f}  {f['answer_s']:11.2f}  {f['rss_load_mb']:8.0f}  "
              f"{f['rss_tenth_mb']:8.0f}  {f['rss_end_mb']:8.0f}  {growth:+7.1%}  {f['rps']:6.1f}")  # fmt: skip
    rss_goal = 1.2 * onnx_mb + 150
    for name in ("slim", "dlc"):
        if (f := rows.get(name)) is None:
            continue
        flat = f["rss_end_mb"] <= f["rss_tenth_mb"] * (1 + FLAT_GOAL)
        goals = [(f"RSS end <= {rss_goal:.0f} MB (1.2 x ONNX + 150)", f["rss_end_mb"] <= rss_goal),
                 (f"flat (<= {FLAT_GOAL:.0%} growth)", flat)]  # fmt: skip
        if name == "slim":
            goals.insert(0, (f"image <= {SLIM_GOAL_MB} MB", f["image_mb"] <= SLIM_GOAL_MB))
        if model == "ViT-B-32":
            goals.append((f"run -> first answer <= {FIRST_ANSWER_GOAL_S:g} s", f["answer_s"] <= FIRST_ANSWER_GOAL_S))
        print(f"  {name} goals: " + "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in goals))
    for base in ("dlc", "toolkit"):
        if "slim" in rows and base in rows:
            slim, other = rows["slim"], rows[base]
            ratios = [
                f"first answer {slim['answer_s'] / other['answer_s']:.2f}x",
                f"RSS end {slim['rss_end_mb'] / other['rss_end_mb']:.2f}x",
                f"req/s {slim['rps'] / other['rps']:.2f}x",
            ]
            if "image_mb" in other:
                ratios.insert(0, f"image {slim['image_mb'] / other['image_mb']:.3f}x")
            print(f"  slim / {base}: " + ", ".join(ratios))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS} requests per target, not {REQUESTS}")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    parser.add_argument("--requests", type=int, help=f"mixed invocations per target (default {REQUESTS})")
    parser.add_argument("--toolkit-engine", default="torch", choices=("torch", "onnxruntime", "auto"))
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "serving_images.json")
    args = parser.parse_args(argv)
    models, targets = args.models.split(","), args.targets.split(",")
    if unknown := (set(models) - set(MODELS)) | (set(targets) - set(TARGETS)):
        parser.error(f"unknown model or target: {sorted(unknown)}")
    requests = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start (shared: one run each)")
    if "toolkit" in targets and (reason := missing_reason()):
        print(f"toolkit left out: {reason}")
        targets.remove("toolkit")
    elif "toolkit" in targets:
        print("toolkit: run as a process from .venv-serving (the DLC it ships in cannot be pulled here)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with Engine(BENCH_DIR / "dockerd"):
        from containers.base_images import dlc_cpu, python_slim

        print("base images: Debian-built equivalents of python:3.12-slim and of the PyTorch DLC, not the official ones")
        images = {}
        if "slim" in targets:
            images["slim"] = build_serving_image(python_slim(), SLIM_TAG, SLIM_DOCKERFILE)
        if "dlc" in targets:
            images["dlc"] = build_serving_image(dlc_cpu())
        for model in models:
            archive = tiny_archive() if model == "tiny-shapes" else random_vit_archive()
            onnx_mb = sum(path.stat().st_size for path in unpacked(archive).glob("*.onnx*")) / MB
            rows = {target: measure(target, images, archive, requests, args.toolkit_engine) for target in targets}
            report(model, onnx_mb, requests, rows)
            results[model] = {"onnx_mb": round(onnx_mb, 1), "requests": requests, "targets": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
