"""A small corpus for the page's search, indexed by the real corpus indexer (scripts/embed_corpus.py).

Pictures of a few tiny-shapes classes and a file of captions are embedded into one Parquet file, images
first and then the texts appended, as an operator would build a mixed index. ``other_model_index`` writes a
file of another model through the indexer's own store, for the refusal.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from model_code.tiny_shapes.shapes import render

PICTURES = [("red", "circle"), ("blue", "star"), ("green", "square"), ("yellow", "triangle"), ("purple", "star")]
CAPTIONS = ["a photo of a red circle", "a blue star", "a green square on a plain background"]
OTHER_MODEL = "ViT-B-32/openai"


def build_corpus(folder: Path) -> Path:
    """``folder/shapes/<colour>-<shape>.png`` and ``folder/captions.txt`` embedded into ``folder/corpus.parquet``."""
    from omnisearch_corpus import cli as embed_corpus

    shapes = folder / "shapes"
    shapes.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    for colour, shape in PICTURES:
        render(colour, shape, "large", rng).save(shapes / f"{colour}-{shape}.png")
    (folder / "captions.txt").write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    out = folder / "corpus.parquet"
    for source in (shapes, folder / "captions.txt"):
        assert embed_corpus.main([str(source), "--output", str(out), "--no-progress"]) == 0
    return out


def other_model_index(folder: Path) -> Path:
    """Two rows of 512-d vectors said to be ViT-B-32/openai's, written by the indexer's store."""
    from omnisearch_corpus.store import Row, Store

    out = folder / "vit.parquet"
    store = Store(out).open()
    rng = np.random.default_rng(0)
    rows = [
        Row(f"t{i}", f"t.txt:{i}", "text", f"sha256:{i}", rng.standard_normal(512).astype(np.float32), text="x")
        for i in range(2)
    ]
    store.add(rows, OTHER_MODEL, 512)
    store.finalize()
    return out
