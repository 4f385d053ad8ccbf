"""The vector file's ``text`` column: texts carry what was embedded, images their source, old files upgrade.

Files written before the column existed (format 1) are made here from a fresh run by dropping the column,
exactly the shape the previous writer produced, and then resumed or appended to by the real indexer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import store as store_module
from tests.corpus.corpus_data import make_captions, make_pictures


def run(*args: object) -> int:
    return embed_corpus.main([*map(str, args), "--no-progress", "--allow-errors"])


def format_of(path: Path) -> int:
    return json.loads(pq.read_schema(path).metadata[store_module.META_KEY])["format"]


def downgrade(path: Path, target: Path | None = None) -> None:
    """Rewrite a Parquet output as the writer before the text column did: no column, format 1."""
    table = pq.read_table(path)
    model, dimension = store_module.table_meta(table)
    old = table.drop_columns(["text"]).replace_schema_metadata(
        {store_module.META_KEY: json.dumps({"model": model, "dimension": dimension, "format": 1}).encode()}
    )
    (target or path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(old, target or path)


def test_text_rows_carry_their_text_and_image_rows_their_source(tmp_path: Path) -> None:
    captions = tmp_path / "captions.txt"
    lines = make_captions(captions)
    names = make_pictures(tmp_path / "shapes")
    out = tmp_path / "mixed.parquet"
    assert run(captions, "--output", out) == 0
    assert run(tmp_path / "shapes", "--output", out) == 0  # images appended to the texts' file
    table = pq.read_table(out)
    assert table.schema.field("text").type == "string" and format_of(out) == store_module.FORMAT_VERSION == 2
    rows = table.select(["id", "kind", "source", "text"]).to_pylist()
    texts = [r for r in rows if r["kind"] == "text"]
    images = [r for r in rows if r["kind"] == "image"]
    assert [r["text"] for r in texts] == [line for line in lines if line]
    assert [r["id"] for r in images] == names
    assert all(r["text"] is None and r["source"] == str(tmp_path / "shapes" / r["id"]) for r in images)


@pytest.mark.parametrize("where", ["file", "part"])
def test_a_file_written_before_the_text_column_is_resumed_and_upgraded(tmp_path: Path, where: str, capsys) -> None:
    captions = tmp_path / "captions.txt"
    lines = make_captions(captions)
    out = tmp_path / "captions.parquet"
    assert run(captions, "--output", out) == 0
    before = pq.read_table(out)
    old = out if where == "file" else tmp_path / "captions.parquet.parts" / "part-000000.parquet"
    downgrade(out, old)  # a part: an interrupted run of the previous writer left it and no file yet
    if where == "part":
        out.unlink()
    assert "text" not in pq.read_schema(old).names
    captions.write_text("\n".join([*lines, "a pink star"]) + "\n", encoding="utf-8")
    capsys.readouterr()

    assert run(captions, "--output", out) == 0
    assert "embedded 1 " in capsys.readouterr().out  # only the new line: the old rows were recognised
    table = pq.read_table(out)
    assert format_of(out) == 2 and table.num_rows == before.num_rows + 1
    assert table.column("text").to_pylist() == [line for line in lines if line] + ["a pink star"]
    np.testing.assert_array_equal(store_module.vectors(table)[:-1], store_module.vectors(before))


def test_rows_whose_text_the_new_source_does_not_hold_stay_null(tmp_path: Path) -> None:
    captions = tmp_path / "captions.txt"
    make_captions(captions)
    out = tmp_path / "index.parquet"
    assert run(captions, "--output", out) == 0
    downgrade(out)
    old_ids = pq.read_table(out).column("id").to_pylist()
    more = tmp_path / "more.txt"
    more.write_text("a green circle\na cyan star\n", encoding="utf-8")
    assert run(more, "--output", out) == 0
    table = pq.read_table(out)
    texts = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True))
    assert [texts[i] for i in old_ids] == [None] * len(old_ids)  # their file was not part of this run
    assert (texts["more.txt:1"], texts["more.txt:2"]) == ("a green circle", "a cyan star")


def test_npy_ids_carry_the_text_and_old_ids_files_still_resume(tmp_path: Path) -> None:
    captions = tmp_path / "captions.txt"
    lines = make_captions(captions)
    out = tmp_path / "captions.npy"
    ids_path = tmp_path / "captions.ids.jsonl"
    assert run(captions, "--output", out) == 0
    records = [json.loads(line) for line in ids_path.read_text().splitlines()]
    assert [r["text"] for r in records] == [line for line in lines if line]
    ids_path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "text"}) + "\n" for r in records))
    matrix = np.load(out)

    assert run(captions, "--output", out) == 0
    again = [json.loads(line) for line in ids_path.read_text().splitlines()]
    assert [r["text"] for r in again] == [r["text"] for r in records]
    np.testing.assert_array_equal(np.load(out), matrix)
