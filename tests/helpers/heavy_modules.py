"""Run a command-line entry point, then say which of torch and open_clip it imported.

``python -m tests.helpers.heavy_modules MODULE ARGS...`` calls ``MODULE.main(ARGS)`` and, once it returns (a
server after its signal, a batch job when done), prints one line ``heavy modules: [...]`` on stdout. The
torch-free door tests read that line: it names what the process imported while it served, not a guess.
"""

from __future__ import annotations

import importlib
import sys

HEAVY = ("torch", "open_clip")
PREFIX = "heavy modules: "


def imported() -> list[str]:
    return [name for name in HEAVY if name in sys.modules]


def reported(stdout: str) -> list[str]:
    """The list the run printed; fails if the line is missing (the entry point never returned)."""
    lines = [line for line in stdout.splitlines() if line.startswith(PREFIX)]
    assert lines, f"no {PREFIX!r} line in:\n{stdout}"
    return [name.strip(" '") for name in lines[-1][len(PREFIX) :].strip("[]").split(",") if name.strip(" '")]


if __name__ == "__main__":
    code = importlib.import_module(sys.argv[1]).main(sys.argv[2:])
    print(f"{PREFIX}{imported()}", flush=True)
    raise SystemExit(code)
