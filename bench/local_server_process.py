"""``python -m local_server`` as a subprocess on a free port, for the benchmarks that load it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# settings a benchmark must not inherit from the caller's shell: they would change what is measured
_INHERITED = ("USE_SAGEMAKER", "CLIP_MODEL", "CLIP_PRETRAINED", "API_KEY", "FALLBACK")


@contextmanager
def local_server(
    model: str, *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start it with ``model`` (random weights: ``--pretrained ""``); yield (base URL, process); stop it with Ctrl-C."""
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    for name in _INHERITED:
        environ.pop(name, None)
    args = [sys.executable, "-m", "local_server", "--port", "0", "--model", model, "--pretrained", "", *extra]
    process = subprocess.Popen(
        args, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        banner = ""
        while "Press Ctrl-C" not in banner:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the local server exited ({process.wait()}): {banner}")
            banner += line
        found = re.search(r"API\s+(\S+)", banner)
        if found is None:
            raise RuntimeError(f"no API URL in the banner: {banner}")
        yield found.group(1), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
