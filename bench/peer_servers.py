"""The two servers of bench/peer_infinity.py, started on free loopback ports under the same thread settings.

Ours is ``python -m local_server`` (bench/local_server_process.py); the peer is infinity-emb's ``v2`` from the
venv and model folder that ``../shared/peer-infinity/README.md`` builds under ``--peer``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from local_server_process import local_server

OUR_MODEL = "ViT-B-32-quickgelu"
PEER_MODEL = "clip-b32"


@dataclass
class Server:
    name: str
    url: str  # the embeddings endpoint
    model: str
    process: subprocess.Popen

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return float("nan")


def thread_env(threads: int) -> dict[str, str]:
    """The same thread settings for both servers (and OMP_WAIT_POLICY when the caller's environment sets it)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)  # by PID only
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def our_server(threads: int, extra: list[str], env_extra: dict[str, str]) -> Iterator[Server]:
    with local_server(OUR_MODEL, *extra, env={**thread_env(threads), **env_extra}) as (url, process):
        yield Server("ours", url + "/v1/embeddings", OUR_MODEL, process)


@contextmanager
def infinity_server(peer: Path, threads: int, timeout: float = 300) -> Iterator[Server]:
    exe, model_dir = peer / "venv" / "bin" / "infinity_emb", peer / "clip-b32"
    if not exe.is_file() or not model_dir.is_dir():
        raise SystemExit(f"no infinity venv or model folder under {peer}: follow shared/peer-infinity/README.md")
    port = free_port()
    env = thread_env(threads)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1")
    env["INFINITY_HOME"] = str(peer)
    args = [
        str(exe), "v2", "--model-id", str(model_dir), "--served-model-name", PEER_MODEL,
        "--engine", "torch", "--device", "cpu", "--dtype", "float32", "--batch-size", "32",
        "--no-compile", "--no-bettertransformer", "--no-vector-disk-cache",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    log = open(peer / "infinity_peer_bench.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"infinity exited ({process.returncode}); see {log.name}")
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"infinity not healthy after {timeout:.0f} s; see {log.name}")
            time.sleep(1)
        yield Server("infinity", base + "/embeddings", PEER_MODEL, process)
    finally:
        stop(process, signal.SIGTERM)
        log.close()
