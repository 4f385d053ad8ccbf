"""Comments and docs speak of the repository: no issue or ticket numbers, no design notes kept elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", ".venv-sam", ".aws-sam", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__"}
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".cfg", ".ini", ".js", ".html"}
OUTSIDE = re.compile(r"\b(issues?|tickets?) ?#?\d+\b|\b(DESIGN|STYLE)\.md\b|\bthe seed'?s?\b", re.IGNORECASE)


def project_files() -> list[Path]:
    files = [p for p in ROOT.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [p for p in files if p.suffix in SUFFIXES or p.name in {"Makefile", "Dockerfile"}]


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in project_files()
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)
