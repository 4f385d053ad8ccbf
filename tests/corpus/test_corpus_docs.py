"""The README's "Index your corpus" example, run as written: draw the shapes, embed them, search with LanceDB.

The code blocks are taken from the README (the deployment guide's search block must be the same one), so
the docs cannot drift from what works. Only the API's address changes: a local server on a free port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from omnisearch_embed.settings import Settings
from tests.local_server.serving import serving

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "SAGEMAKER_DEPLOYMENT_GUIDE.md"
DOC_API = "http://127.0.0.1:8000"


def section(path: Path, title: str) -> str:
    text = path.read_text()
    start = text.index(f"{title}\n")
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def readme_blocks() -> list[tuple[str, str]]:
    return blocks(section(README, "## Index your corpus"))


def test_the_guide_shows_the_readmes_search_code(readme_blocks):
    guide = [code for lang, code in blocks(section(GUIDE, "## 13. Index your corpus")) if lang == "python"]
    assert readme_blocks[-1][1] in guide


def test_the_readme_example_finds_the_blue_star_from_its_caption(readme_blocks, tmp_path):
    from local_server.clip_backend import LocalClipBackend

    (lang1, make_shapes), (lang2, commands), (lang3, search) = readme_blocks
    assert (lang1, lang2, lang3) == ("python", "bash", "python")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    (tmp_path / "make_shapes.py").write_text(make_shapes)
    for line in commands.strip().splitlines():
        argv = line.split()
        argv = [sys.executable if a == ".venv/bin/python" else a for a in argv]
        argv = [str(ROOT / a) if a.startswith("scripts/") else a for a in argv]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((tmp_path / "shapes").glob("*.png"))) == 32 and (tmp_path / "shapes.parquet").is_file()

    assert DOC_API in search
    tiny = LocalClipBackend("tiny-shapes")
    with serving(tiny, Settings(), local_model=lambda: tiny) as running:
        (tmp_path / "search.py").write_text(search.replace(DOC_API, running.url))
        done = subprocess.run(
            [sys.executable, "search.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stdout + done.stderr
    hits = [line.split()[0] for line in done.stdout.splitlines()]
    assert len(hits) == 3 and hits[0] == "blue-star.png"
