"""scripts/embed_corpus.py --engine local on tiny-shapes: vectors, bad items, resume after a crash, formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pyarrow.parquet as pq
import pytest

from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import store as store_module
from tests.corpus.corpus_data import BROKEN, make_captions, make_pictures
from tests.helpers.local_server_process import ROOT, child_env


@pytest.fixture(scope="module")
def backend():
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "shapes"
    return folder, make_pictures(folder)


def run(*args: str) -> int:
    return embed_corpus.main([*map(str, args), "--no-progress"])


def test_a_folder_embeds_every_good_picture_and_reports_the_broken_one(pictures, tmp_path, backend, capsys):
    folder, names = pictures
    out = tmp_path / "shapes.parquet"
    assert run(folder, "--output", out, "--batch-size", "3") == 1  # an item failed and --allow-errors is off
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == names
    assert set(table.column("model").to_pylist()) == {"tiny-shapes"} and set(table.column("dimension").to_pylist()) == {
        64
    }
    assert table.column("kind").to_pylist() == ["image"] * len(names)
    expected = backend.embed_images([(folder / n).read_bytes() for n in names]).vectors
    np.testing.assert_allclose(store_module.vectors(table), np.asarray(expected, np.float32), atol=1e-5)
    assert store_module.table_meta(table) == ("tiny-shapes", 64)
    (error,) = [json.loads(line) for line in (tmp_path / "shapes.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and error["code"] == "invalid_image" and "not a readable image" in error["message"]
    text = capsys.readouterr().out
    assert f"embedded {len(names)}" in text and "failed 1 of 9" in text and "invalid_image 1" in text


def test_allow_errors_exits_zero_and_a_rerun_embeds_nothing_again(pictures, tmp_path, capsys):
    folder, _ = pictures
    out = tmp_path / "shapes.parquet"
    assert run(folder, "--output", out, "--allow-errors") == 0
    first = pq.read_table(out)
    assert run(folder, "--output", out, "--allow-errors") == 0
    assert "embedded 0" in capsys.readouterr().out.splitlines()[-3]
    assert pq.read_table(out).equals(first)


class CrashingEngine:
    """The real local engine that dies on its ``crash_on``-th batch (a crash in the middle of a run)."""

    def __init__(self, inner, crash_on: int | None = None) -> None:
        self.inner, self.crash_on = inner, crash_on
        self.name, self.model_id = inner.name, inner.model_id
        self.batches: list[int] = []

    def embed(self, kind, payloads):
        self.batches.append(len(payloads))
        if self.crash_on is not None and len(self.batches) == self.crash_on:
            raise RuntimeError("the machine went away")
        return self.inner.embed(kind, payloads)

    def close(self) -> None:
        pass


def test_resume_after_a_crash_embeds_nothing_twice_and_equals_an_uninterrupted_run(pictures, tmp_path, monkeypatch):
    from omnisearch_corpus.engine_local import LocalEngine

    folder, names = pictures
    real = LocalEngine("tiny-shapes")
    engines = []

    def build(args, crash_on=None):
        engines.append(CrashingEngine(real, crash_on))
        return engines[-1]

    options = ("--batch-size", "2", "--flush-every", "2", "--allow-errors", "--workers", "2")
    monkeypatch.setattr(embed_corpus, "build_engine", lambda args: build(args))
    assert run(folder, "--output", tmp_path / "whole.parquet", *options) == 0
    whole = pq.read_table(tmp_path / "whole.parquet")

    out = tmp_path / "resumed.parquet"
    monkeypatch.setattr(embed_corpus, "build_engine", lambda args: build(args, crash_on=3))
    with pytest.raises(RuntimeError, match="went away"):
        run(folder, "--output", out, *options)
    assert not out.exists() and len(list((tmp_path / "resumed.parquet.parts").glob("part-*.parquet"))) == 2

    monkeypatch.setattr(embed_corpus, "build_engine", lambda args: build(args))
    assert run(folder, "--output", out, *options) == 0
    resumed = pq.read_table(out)
    # two batches of two were saved before the crash; the broken file has no vector, so it is tried again
    assert sum(engines[-1].batches) == len(names) - 4 + 1
    assert resumed.column("id").to_pylist() == whole.column("id").to_pylist() == names
    np.testing.assert_array_equal(store_module.vectors(resumed), store_module.vectors(whole))
    assert not (tmp_path / "resumed.parquet.parts").exists()


def test_a_text_file_flags_truncation_and_reports_the_empty_line(tmp_path, backend):
    captions = tmp_path / "captions.txt"
    lines = make_captions(captions)
    out = tmp_path / "captions.parquet"
    assert run(captions, "--output", out) == 1
    table = pq.read_table(out)
    good = [line for line in lines if line]
    assert table.column("id").to_pylist() == [f"captions.txt:{n}" for n, line in enumerate(lines, 1) if line]
    assert table.column("truncated").to_pylist() == [False] * (len(good) - 1) + [True]
    expected = np.asarray(backend.embed_texts(good).vectors, np.float32)
    np.testing.assert_allclose(store_module.vectors(table), expected, atol=1e-5)
    (error,) = [json.loads(line) for line in (tmp_path / "captions.parquet.errors.jsonl").read_text().splitlines()]
    assert error == {"id": "captions.txt:4", "source": f"{captions}:4", "code": "empty_text", "message": ANY}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_jsonl_and_csv_use_the_named_columns(tmp_path, fmt):
    source = tmp_path / f"docs.{fmt}"
    if fmt == "jsonl":
        rows = [{"sku": "a1", "caption": "a red circle"}, {"sku": "b2", "caption": "a blue star"}, {"sku": "c3"}]
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        source.write_text("sku,caption\na1,a red circle\nb2,a blue star\nc3,\n")
    out = tmp_path / "docs.parquet"
    assert run(source, "--output", out, "--id-field", "sku", "--text-field", "caption", "--allow-errors") == 0
    assert pq.read_table(out).column("id").to_pylist() == ["a1", "b2"]
    (error,) = [json.loads(line) for line in (tmp_path / "docs.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == "c3" and error["code"] == ("missing_text" if fmt == "jsonl" else "empty_text")


def test_npy_output_with_ids_and_metadata(pictures, tmp_path):
    folder, names = pictures
    out = tmp_path / "vectors.npy"
    assert run(folder, "--output", out, "--allow-errors") == 0
    matrix = np.load(out)
    ids = [json.loads(line)["id"] for line in (tmp_path / "vectors.ids.jsonl").read_text().splitlines()]
    meta = json.loads((tmp_path / "vectors.meta.json").read_text())
    assert matrix.shape == (len(names), 64) and matrix.dtype == np.float32 and ids == names
    assert meta["model"] == "tiny-shapes" and meta["count"] == len(names)
    assert run(folder, "--output", out, "--allow-errors") == 0  # resumes from the .npy set too
    np.testing.assert_array_equal(np.load(out), matrix)


def test_appending_vectors_of_another_model_is_refused(pictures, tmp_path, capsys):
    folder, _ = pictures
    out = tmp_path / "other.parquet"
    other = store_module.Store(out).open()
    other.add([store_module.Row("x", "x", "image", "sha256:0", np.zeros(8, np.float32))], "ViT-B-32/openai", 8)
    other.finalize()
    with pytest.raises(SystemExit) as stopped:
        run(folder, "--output", out)
    assert stopped.value.code == 2
    assert "holds vectors of ViT-B-32/openai" in capsys.readouterr().err
    assert pq.read_table(out).num_rows == 1


def test_dry_run_counts_and_prices_a_batch_transform_job(tmp_path, capsys):
    captions = tmp_path / "captions.txt"
    make_captions(captions)
    assert run(captions, "--output", tmp_path / "c.parquet", "--dry-run", "--throughput", "100") == 0
    text = capsys.readouterr().out
    assert "10 texts found" in text and "bad before embedding: 1" in text and "to embed: 9" in text
    assert "1 x ml.g4dn.xlarge at $0.7364/h" in text and "100 texts/s per instance" in text
    assert not (tmp_path / "c.parquet").exists()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [("CLIP_ENGINE", "bogus", "CLIP_ENGINE='bogus' is not one of"),
     ("CLIP_DECODE_THREADS", "x", "CLIP_DECODE_THREADS='x' is not an integer")],
)  # fmt: skip
def test_a_bad_model_setting_is_one_line_and_exit_2(tmp_path: Path, variable: str, value: str, says: str) -> None:
    captions = tmp_path / "captions.txt"
    captions.write_text("a red circle\n", encoding="utf-8")
    args = [sys.executable, "scripts/embed_corpus.py", str(captions), "--output", str(tmp_path / "out.parquet"),
            "--engine", "local", "--no-progress"]  # fmt: skip
    done = subprocess.run(
        args, cwd=ROOT, env=child_env(("CLIP_",), **{variable: value}), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and says in done.stderr
    assert done.stderr.startswith("error: configuration error: ")
