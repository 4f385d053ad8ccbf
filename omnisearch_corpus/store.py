"""The vector file: Parquet (``id, source, kind, content_key, vector, model, dimension, truncated, text``) or .npy.

A run writes finished batches as small Parquet parts in ``<output>.parts/`` (each one written whole, then
renamed into place), so a crash loses at most the batch in flight. At the end the existing file and the
parts become the new file, again written beside it and renamed, and the parts go. A re-run reads both, so
it skips every ``(id, content key)`` already embedded and appends the rest; an id whose content changed is
embedded again and its new row replaces the old. The file's metadata names the model: appending vectors
of another model is refused, so two models never mix in one index.

Text rows carry their ``text``, so a search hit can be shown without the source file; image rows keep
only their ``source`` (a path or an S3 URI) and a null text. Files written before the column existed
(format 1) are read as having null texts, and an append rewrites them with the column (format 2): the rows
whose text the re-run's source still holds (same id, same content hash) get it back, the others stay null.

``.npy`` output is the float32 matrix, with ``<stem>.ids.jsonl`` (one line per row: id, source, kind,
content_key, truncated, text) and ``<stem>.meta.json`` (model, dimension, count) beside it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

META_KEY = b"omnisearch_embed"
FORMAT_VERSION = 2  # 2: the text column
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("content_key", pa.string()),
        ("vector", pa.list_(pa.float32())),
        ("model", pa.string()),
        ("dimension", pa.int32()),
        ("truncated", pa.bool_()),
        ("text", pa.string()),
    ]
)
_ROW_FIELDS = ("id", "source", "kind", "content_key", "truncated", "text")
KEY_COLUMNS = ("id", "content_key")


class ModelMismatchError(ValueError):
    """The output holds vectors of another model (or dimension)."""


@dataclass(frozen=True)
class Row:
    id: str
    source: str
    kind: str
    content_key: str
    vector: np.ndarray
    truncated: bool = False
    text: str | None = None  # texts only: what was embedded


def rows_table(rows: list[Row], model: str, dimension: int) -> pa.Table:
    matrix = np.ascontiguousarray(np.stack([r.vector for r in rows]), dtype=np.float32) if rows else None
    flat = pa.array(matrix.reshape(-1) if matrix is not None else np.empty(0, np.float32), type=pa.float32())
    offsets = pa.array(np.arange(0, (len(rows) + 1) * dimension, dimension, dtype=np.int32))
    columns = {
        "id": [r.id for r in rows],
        "source": [r.source for r in rows],
        "kind": [r.kind for r in rows],
        "content_key": [r.content_key for r in rows],
        "vector": pa.ListArray.from_arrays(offsets, flat),
        "model": [model] * len(rows),
        "dimension": pa.array([dimension] * len(rows), type=pa.int32()),
        "truncated": [bool(r.truncated) for r in rows],
        "text": [r.text for r in rows],
    }
    return pa.table(columns, schema=SCHEMA.with_metadata(_meta(model, dimension)))


def _meta(model: str, dimension: int) -> dict[bytes, bytes]:
    return {META_KEY: json.dumps({"model": model, "dimension": dimension, "format": FORMAT_VERSION}).encode()}


def with_text(table: pa.Table) -> pa.Table:
    """``table`` with a ``text`` column: null for a file (or part) written before the column existed."""
    if "text" in table.column_names:
        return table
    return table.append_column(pa.field("text", pa.string()), pa.nulls(table.num_rows, pa.string()))


def table_meta(table: pa.Table) -> tuple[str, int] | None:
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        return None
    doc = json.loads(raw)
    return str(doc["model"]), int(doc["dimension"])


def vectors(table: pa.Table) -> np.ndarray:
    """The ``vector`` column as a count x dimension float32 matrix."""
    if table.num_rows == 0:
        return np.empty((0, 0), np.float32)
    column = table.column("vector").combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(table.num_rows, -1)


def npy_paths(path: Path) -> tuple[Path, Path]:
    stem = path.with_suffix("")
    return stem.with_name(stem.name + ".ids.jsonl"), stem.with_name(stem.name + ".meta.json")


def read_output(path: Path) -> pa.Table | None:
    """An existing vector file (either format) as one table, or None."""
    if not path.exists():
        return None
    if path.suffix != ".npy":
        return pq.read_table(path)
    ids_path, meta_path = npy_paths(path)
    meta = json.loads(meta_path.read_text())
    matrix = np.load(path, allow_pickle=False)
    records = [json.loads(line) for line in ids_path.read_text().splitlines() if line.strip()]
    if not len(records) == len(matrix) == int(meta["count"]):
        raise ValueError(f"{path}, {ids_path.name} and {meta_path.name} disagree on the row count: rewrite the output")
    rows = [
        Row(r["id"], r["source"], r["kind"], r["content_key"], matrix[i], r["truncated"], r.get("text"))
        for i, r in enumerate(records)
    ]
    return rows_table(rows, meta["model"], int(meta["dimension"]))


class Store:
    """The output file plus this run's parts; ``done`` holds every ``(id, content key)`` already embedded."""

    def __init__(self, path: Path, flush_rows: int = 256) -> None:
        self.path = Path(path)
        self.parts_dir = self.path.with_name(self.path.name + ".parts")
        self.flush_rows = max(1, flush_rows)
        self.model: str | None = None
        self.dimension: int | None = None
        self.done: set[tuple[str, str]] = set()
        self.existing_rows = 0
        self.known_texts: dict[tuple[str, str], str] = {}  # skipped texts, to fill rows written without them
        self._pending: list[Row] = []
        self._seq = 0
        self.added = 0

    def open(self) -> Store:
        """Read what is embedded already (ids, content keys and the model; never the vectors)."""
        tables = [t for t in (self._keys(), *self._parts(KEY_COLUMNS)) if t is not None]
        for table in tables:
            meta = table_meta(table)
            if meta is not None:
                self.check_model(*meta)
            self.done.update(zip(table.column("id").to_pylist(), table.column("content_key").to_pylist(), strict=True))
            self.existing_rows += table.num_rows
        self._seq = len(list(self.parts_dir.glob("part-*.parquet"))) if self.parts_dir.is_dir() else 0
        return self

    def _keys(self) -> pa.Table | None:
        if not self.path.exists():
            return None
        if self.path.suffix != ".npy":
            return pq.read_table(self.path, columns=list(KEY_COLUMNS))
        ids_path, meta_path = npy_paths(self.path)
        meta = json.loads(meta_path.read_text())
        records = [json.loads(line) for line in ids_path.read_text().splitlines() if line.strip()]
        columns = {name: [r[name] for r in records] for name in KEY_COLUMNS}
        return pa.table(columns).replace_schema_metadata(_meta(meta["model"], int(meta["dimension"])))

    def _parts(self, columns: tuple[str, ...] | None = None) -> list[pa.Table]:
        if not self.parts_dir.is_dir():
            return []
        names = list(columns) if columns else None
        return [pq.read_table(p, columns=names) for p in sorted(self.parts_dir.glob("part-*.parquet"))]

    def check_model(self, model: str, dimension: int | None = None) -> None:
        """Refuse another model (or dimension) than the file's; the first one seen becomes the file's."""
        if self.model is None:
            if dimension is not None:
                self.model, self.dimension = model, dimension
        elif model != self.model or (dimension is not None and dimension != self.dimension):
            raise ModelMismatchError(
                f"{self.path} holds vectors of {self.model} (dimension {self.dimension}); this run embeds with "
                f"{model}: two models never mix in one file, write to another --output"
            )

    def skip_text(self, item_id: str, key: str, text: str) -> None:
        """A text already embedded: kept so that a row stored without its text (format 1) gets it back."""
        self.known_texts[(item_id, key)] = text

    def add(self, rows: list[Row], model: str, dimension: int) -> None:
        if not rows:
            return
        self.check_model(model, dimension)
        self._pending += rows
        self.added += len(rows)
        if len(self._pending) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write what is pending as one part (whole, then renamed: a crash never leaves half a part)."""
        if not self._pending or self.model is None or self.dimension is None:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        final = self.parts_dir / f"part-{self._seq:06d}.parquet"
        tmp = final.with_suffix(".tmp")
        pq.write_table(rows_table(self._pending, self.model, self.dimension), tmp)
        os.replace(tmp, final)
        self._seq += 1
        self._pending = []

    def finalize(self) -> int:
        """Existing rows plus the parts, one row per id (the newest), as the output file; returns its rows."""
        self.flush()
        tables = [t for t in (read_output(self.path), *self._parts()) if t is not None and t.num_rows]
        if not tables:
            return 0
        assert self.model is not None and self.dimension is not None
        table = pa.concat_tables([with_text(t).select(SCHEMA.names).cast(SCHEMA) for t in tables])
        table = self._fill_texts(table)
        ids = table.column("id").to_pylist()
        last = {item_id: i for i, item_id in enumerate(ids)}
        if len(last) != len(ids):
            table = table.take(pa.array(sorted(last.values())))
        table = table.replace_schema_metadata(_meta(self.model, self.dimension))
        self._write(table)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return table.num_rows

    def _fill_texts(self, table: pa.Table) -> pa.Table:
        """Rows of texts stored without their text get the one this run's source holds for the same content."""
        texts = table.column("text")
        missing = pc.and_(pc.is_null(texts), pc.equal(table.column("kind"), "text"))
        if not self.known_texts or not pc.any(missing).as_py():
            return table
        keys = zip(table.column("id").to_pylist(), table.column("content_key").to_pylist(), strict=True)
        filled = [
            text if text is not None else self.known_texts.get(key)
            for key, text in zip(keys, texts.to_pylist(), strict=True)
        ]
        return table.set_column(table.schema.get_field_index("text"), "text", pa.array(filled, pa.string()))

    def _write(self, table: pa.Table) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix != ".npy":
            tmp = self.path.with_name(self.path.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, self.path)
            return
        ids_path, meta_path = npy_paths(self.path)
        rows = table.select(list(_ROW_FIELDS)).to_pylist()
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        meta = {"model": self.model, "dimension": self.dimension, "count": table.num_rows, "format": FORMAT_VERSION}
        buffer = io.BytesIO()
        np.save(buffer, vectors(table), allow_pickle=False)
        # three renames, not one: read_output refuses a set whose counts disagree (a crash between them)
        for target, data in (
            (ids_path, lines.encode("utf-8")),
            (meta_path, json.dumps(meta, indent=2).encode()),
            (self.path, buffer.getvalue()),
        ):
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
