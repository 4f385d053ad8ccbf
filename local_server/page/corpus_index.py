"""A corpus index in memory: the Parquet file ``scripts/embed_corpus.py`` writes, searched with numpy.

The file's metadata (``omnisearch_embed``: model, dimension) names the model that embedded it. A query is
only ever compared with vectors of the same model, so an index of another model is loaded (the server still
starts, and its banner says REFUSED, naming both models) but ``GET /index`` and every search on it answer 409
``index_model_mismatch``, naming both models. Rows are L2-normalised once at load, so a dot product is the
cosine similarity; the summary (rows, kinds) is counted once at load too, never per search.

Images are shown from their ``source``: a local path, read as it was written (relative paths first from the
server's working folder, then from the index file's folder), or an ``s3://`` URI that is shown, not fetched.
Files written before the ``text`` column existed have no texts: their text rows show their source instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omnisearch_embed.errors import EmbedError, NotFoundError

META_KEY = b"omnisearch_embed"  # the indexer's metadata key (omnisearch_corpus/store.py)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif"})
_COLUMNS = ("id", "source", "kind", "vector")


class IndexFileError(ValueError):
    """The file cannot serve as an index: missing, not Parquet, not written by the corpus indexer."""


class IndexModelMismatchError(EmbedError):
    """The index holds vectors of another model than the one this server embeds queries with (409)."""

    status = HTTPStatus.CONFLICT
    code = "index_model_mismatch"


@dataclass(frozen=True)
class Hit:
    row: int
    id: str
    kind: str
    source: str
    text: str | None
    score: float


class CorpusIndex:
    """The vectors (rows x dimension, float32, unit length) and what each row is."""

    def __init__(
        self,
        path: Path,
        model: str,
        matrix: np.ndarray,
        ids: list[str],
        kinds: list[str],
        sources: list[str],
        texts: list[str | None],
    ) -> None:
        if not len(ids) == len(kinds) == len(sources) == len(texts) == matrix.shape[0]:
            raise IndexFileError(f"{path}: the columns disagree on the row count")
        self.path, self.model = path, model
        self.matrix, self.ids, self.kinds, self.sources, self.texts = matrix, ids, kinds, sources, texts
        counts = Counter(kinds)  # one pass, at load: the rows never change, and every search reports them
        self.kind_counts = {kind: counts[kind] for kind in sorted(counts)}

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[1])

    def summary(self) -> dict[str, object]:
        """What the index holds: file, model, dimension, rows and rows per kind (counted at load)."""
        return {
            "file": self.path.name,
            "model": self.model,
            "dimension": self.dimension,
            "rows": self.rows,
            "kinds": dict(self.kind_counts),
        }

    def check_model(self, model: str, dimension: int | None = None) -> None:
        """Refuse queries embedded by another model (or of another dimension) than the index's."""
        if model != self.model or (dimension is not None and dimension != self.dimension):
            raise IndexModelMismatchError(
                f"the index {self.path.name} holds vectors of {self.model} (dimension {self.dimension}), but this "
                f"server embeds queries with {model}"
                + (f" (dimension {dimension})" if dimension else "")
                + f": vectors of two models cannot be compared; serve {self.model}, or index the corpus again "
                f"with {model}"
            )

    def search(self, query: Sequence[float] | np.ndarray, k: int) -> list[Hit]:
        """The ``k`` rows most similar to ``query`` (a unit vector), best first."""
        k = max(0, min(k, self.rows))
        if k == 0:
            return []
        scores = self.matrix @ np.asarray(query, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k] if k < self.rows else np.arange(self.rows)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(int(i), self.ids[i], self.kinds[i], self.sources[i], self.texts[i], float(scores[i])) for i in top]

    def image_file(self, row: int) -> Path:
        """The local file of image row ``row``; NotFoundError when there is none to show."""
        if not 0 <= row < self.rows or self.kinds[row] != "image":
            raise NotFoundError(f"the index has no image at row {row}", code="thumbnail_not_found")
        source = self.sources[row]
        if "://" in source:
            raise NotFoundError(f"{source} is not a local file: it is shown, not fetched", code="thumbnail_not_found")
        path = Path(source)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise NotFoundError(f"{source} is not an image file name", code="thumbnail_not_found")
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, self.path.parent / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise NotFoundError(f"{source} is not on this machine (any more)", code="thumbnail_not_found")


def _model_of(path: Path, metadata: dict[bytes, bytes] | None) -> str:
    raw = (metadata or {}).get(META_KEY)
    if raw is None:
        raise IndexFileError(f"{path} has no {META_KEY.decode()} metadata: write it with scripts/embed_corpus.py")
    try:
        return str(json.loads(raw)["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise IndexFileError(f"{path}: unreadable {META_KEY.decode()} metadata ({e})") from e


def _matrix(path: Path, vectors: pa.Array) -> np.ndarray:
    """Rows x dimension from the list column; every row must have a vector, all of one length.

    The lengths are compared row by row: a flat size that divides by the row count can still hide vectors
    of several lengths (3 and 5 make 8, two rows of 4).
    """
    try:
        lengths = pc.min_max(pc.list_value_length(vectors))
        values = vectors.flatten()
    except (pa.ArrowException, AttributeError) as e:  # not a list column
        raise IndexFileError(f"{path}: the vector column is not a list of numbers ({vectors.type})") from e
    shortest, longest = lengths["min"].as_py(), lengths["max"].as_py()
    if vectors.null_count or values.null_count:
        raise IndexFileError(f"{path}: {vectors.null_count or values.null_count} vector(s) or value(s) are missing")
    if shortest != longest:
        raise IndexFileError(f"{path}: the vectors do not all have one dimension ({shortest} to {longest} values)")
    if not shortest:
        raise IndexFileError(f"{path}: the vectors are empty")
    return values.to_numpy(zero_copy_only=False).reshape(len(vectors), shortest)


def load_index(path: str | Path) -> CorpusIndex:
    """Read ``path`` (Parquet from scripts/embed_corpus.py); IndexFileError says why it cannot be used."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise IndexFileError(f"{path}: the index must be the Parquet file scripts/embed_corpus.py writes")
    try:
        schema = pq.read_schema(path)
        model = _model_of(path, schema.metadata)
        missing = [c for c in _COLUMNS if c not in schema.names]
        if missing:
            raise IndexFileError(f"{path} has no column {', '.join(missing)}: write it with scripts/embed_corpus.py")
        columns = [*_COLUMNS, *(["text"] if "text" in schema.names else [])]
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as e:  # missing, unreadable, or not Parquet
        raise IndexFileError(f"cannot read {path}: {e}") from e
    rows = table.num_rows
    if rows == 0:
        raise IndexFileError(f"{path} holds no vectors")
    vectors = table.column("vector").combine_chunks()
    matrix = _matrix(path, vectors).astype(np.float32, copy=False)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms > 0, norms, 1.0).astype(np.float32)  # a new, writable array
    texts = table.column("text").to_pylist() if "text" in table.column_names else [None] * rows
    column = table.column
    return CorpusIndex(
        path, model, matrix, column("id").to_pylist(), column("kind").to_pylist(), column("source").to_pylist(), texts
    )
