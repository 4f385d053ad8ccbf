"""``python -m local_server`` (or a script that runs its CLI) as a real process, started once its banner is out.

The benchmarks have their own starter (bench/local_server_process.py); tests keep theirs here, so that a
failure to start shows the banner so far and the process's stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_UP_S = 120  # a cold import of torch and open_clip on a busy 2-core machine


def child_env(drop: tuple[str, ...], **extra: str) -> dict[str, str]:
    """This environment less the variables starting with ``drop``, the checkout first on PYTHONPATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    return {**env, **extra}


@contextmanager
def started(args: Sequence[str], env: Mapping[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``args`` at the checkout's root; yield (process, banner) once a line starts with "Press Ctrl-C".

    A process still running when the block ends is killed.
    """
    process = subprocess.Popen(
        list(args), cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + START_UP_S
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines) + process.stderr.read()
            lines.append(process.stdout.readline())
        yield process, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, as a user stops it; returns what it wrote on stdout and stderr after the banner."""
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=60)
