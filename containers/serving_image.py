"""Our serving images, built and run as SageMaker runs them: endpoint_server/Dockerfile (the PyTorch DLC: GPU,
and torch on the CPU) and endpoint_server/Dockerfile.cpu (slim: python:3.12-slim and ONNX Runtime, no torch).

SageMaker starts ``docker run IMAGE serve`` with the model archive unpacked read-only at /opt/ml/model and
sends /ping and /invocations to port 8080; it stops the container with ``docker stop`` (SIGTERM, then SIGKILL
after the grace period), so in-flight invocations must drain.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from containers.engine import ContainerError, container_logs, docker, free_port

__all__ = [
    "DOCKERFILE",
    "SERVING_TAG",
    "SLIM_DOCKERFILE",
    "SLIM_TAG",
    "Running",
    "build_serving_image",
    "model_dir",
    "run_as_sagemaker",
]

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "endpoint_server" / "Dockerfile"
SLIM_DOCKERFILE = ROOT / "endpoint_server" / "Dockerfile.cpu"
SERVING_TAG = "omnisearch-embed-endpoint:local"
SLIM_TAG = "omnisearch-embed-endpoint:cpu-local"


def build_serving_image(base_image: str, tag: str = SERVING_TAG, dockerfile: Path = DOCKERFILE) -> str:
    """``docker build`` of ``dockerfile`` (DOCKERFILE or SLIM_DOCKERFILE) on ``base_image``; Docker's layer cache
    makes reruns quick.

    The context is what ``<dockerfile>.dockerignore`` lets in, staged apart: the classic builder reads only a
    root .dockerignore. pip inside the build reaches PyPI through this machine's network (``--network host``).
    """
    with tempfile.TemporaryDirectory(prefix="omnisearch-context-") as context:
        for line in Path(f"{dockerfile}.dockerignore").read_text().splitlines():
            if line.startswith("!"):
                source, target = ROOT / line[1:].strip("/"), Path(context) / line[1:].strip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(source, target)
        args = ["--force-rm", "--network", "host", "-f", str(dockerfile), "--build-arg", f"BASE_IMAGE={base_image}"]
        docker("build", *args, "-t", tag, context, timeout=1200)
    return tag


def model_dir(archive: Path | None, work: Path, *, onnx: bool = True) -> Path:
    """``archive`` (default: tiny-shapes, packaged by scripts/package_model.py) unpacked as SageMaker unpacks it.

    The default leaves out the archive's offline wheels: our image installs the model's packages when it is built;
    ``onnx=False`` leaves out its ONNX towers too (``--no-onnx``), which only an image with torch can serve.
    """
    if archive is None:
        archive = work / "model.tar.gz"
        script = ROOT / "scripts" / "package_model.py"
        command = [
            sys.executable,
            str(script),
            "--output",
            str(archive),
            "--no-wheels",
            *([] if onnx else ["--no-onnx"]),
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ContainerError(f"package_model.py failed:\n{(done.stdout + done.stderr)[-2000:]}")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(work / "model", filter="data")
    return work / "model"


@dataclass(frozen=True)
class Running:
    container_id: str
    url: str  # the container's port 8080, published on 127.0.0.1


@contextmanager
def run_as_sagemaker(image: str, model_dir: Path, *, ping_timeout: float = 180, stop_grace: int = 30,
                     env: dict[str, str] | None = None, healthy: bool = True) -> Iterator[Running]:  # fmt: skip
    """The container serving ``model_dir``, once /ping answers 200 (at once with ``healthy=False``, for a start
    that is meant to fail); removed by its id on exit (stopped first, as SageMaker stops it)."""
    port = free_port()
    args = ["run", "-d", "-v", f"{model_dir.resolve()}:/opt/ml/model:ro", "-p", f"127.0.0.1:{port}:8080"]
    for name, value in (env or {}).items():
        args += ["-e", f"{name}={value}"]
    container = docker(*args, image, "serve").strip()
    try:
        running = Running(container, f"http://127.0.0.1:{port}")
        if healthy:
            _wait_for_ping(running, ping_timeout)
        yield running
    finally:
        docker("stop", "-t", str(stop_grace), container, check=False, timeout=stop_grace + 30)
        docker("rm", "-f", container, check=False)


def _wait_for_ping(running: Running, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker("inspect", "--format", "{{.State.Status}}", running.container_id).strip()
        if state != "running":
            logs = container_logs(running.container_id, tail=40)
            raise ContainerError(f"the serving container stopped ({state}) before /ping answered:\n{logs}")
        try:
            with urllib.request.urlopen(f"{running.url}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    logs = container_logs(running.container_id, tail=40)
    raise ContainerError(f"/ping did not answer 200 within {timeout:.0f} s:\n{logs}")
