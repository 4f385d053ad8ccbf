"""``--engine local`` with the ONNX cache warm embeds pictures and captions without importing torch or open_clip."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq

from tests.corpus.corpus_data import make_captions, make_pictures
from tests.helpers.heavy_modules import reported
from tests.helpers.local_server_process import ROOT, child_env


def test_the_local_engine_embeds_a_corpus_without_torch(tmp_path) -> None:
    env = child_env(("CLIP_",), CLIP_ONNX_CACHE=str(tmp_path / "onnx-cache"))
    warm = [sys.executable, "-c", "from local_server.clip_backend import LocalClipBackend; LocalClipBackend()"]
    subprocess.run(warm, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)  # exports with torch
    names = make_pictures(tmp_path / "shapes")
    texts = [t for t in make_captions(tmp_path / "captions.txt") if t]  # the blank line is an error item
    for source, out, count in ((tmp_path / "shapes", "shapes.parquet", len(names)),
                               (tmp_path / "captions.txt", "captions.parquet", len(texts))):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "tests.helpers.heavy_modules", "omnisearch_corpus.cli", str(source),
             "--output", str(tmp_path / out), "--engine", "local", "--no-progress", "--allow-errors"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert reported(done.stdout) == []
        assert pq.read_table(tmp_path / out).num_rows == count
