"""Comments and docs speak of the repository: no issue or ticket numbers, no design notes kept elsewhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".cfg", ".ini", ".js", ".html"}
OUTSIDE = re.compile(r"\b(issues?|tickets?) ?#?\d+\b|\b(DESIGN|STYLE)\.md\b|\bthe seed'?s?\b", re.IGNORECASE)


def project_files() -> list[Path]:
    """What git tracks, and what it would (untracked, not ignored): never the venvs, node_modules or builds."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = [ROOT / name for name in listed.split("\0") if name]
    return [p for p in files if p.is_file() and (p.suffix in SUFFIXES or p.name in {"Makefile", "Dockerfile"})]


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in project_files()
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)
