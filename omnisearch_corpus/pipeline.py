"""One run: reader threads load items, batches go to the engine (several at once), rows go to the store.

Everything stays in source order (bounded windows of futures, read in order), so a resumed run writes the
same file as an uninterrupted one. Items already in the store are skipped by ``(id, content key)``;
bad items go to the errors file with their reason. A progress bar (tqdm: items/s and ETA) runs on stderr.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from omnisearch_corpus.engines import Engine
from omnisearch_corpus.sources import Corpus, Item, read_item
from omnisearch_corpus.store import ModelMismatchError, Row, Store

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Failure:
    item: Item
    code: str
    message: str


@dataclass
class RunStats:
    total: int = 0
    skipped: int = 0
    embedded: int = 0
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    rows: int = 0

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Loaded:
    item: Item
    payload: bytes | str
    key: str


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, at most ``window`` ahead, results in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="corpus") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= max(1, window):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def write_errors(path: Path, failures: list[Failure]) -> None:
    """One JSON line per failed item; no file (and no stale one) when nothing failed."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    lines = (
        json.dumps({"id": f.item.id, "source": f.item.source, "code": f.code, "message": f.message}) + "\n"
        for f in failures
    )
    path.write_text("".join(lines), encoding="utf-8")


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        batch_size: int = 64,
        workers: int = 4,
        concurrency: int = 1,
        progress: bool = True,
        s3: Any = None,
    ) -> None:
        self.engine, self.store = engine, store
        self.batch_size, self.workers, self.concurrency = max(1, batch_size), max(1, workers), max(1, concurrency)
        self.progress, self.s3 = progress, s3

    def _load(self, item: Item) -> _Loaded | Failure | None:
        """In a reader thread: the payload, a Failure, or None when the item is already embedded."""
        if item.error is not None:
            return Failure(item, *item.error)
        if item.key is not None and (item.id, item.key) in self.store.done:
            return self._skip(item, item.key)
        try:
            payload, key = read_item(item, self.s3)
        except Exception as e:  # an unreadable file or object is this item's problem, not the run's
            return Failure(item, "unreadable", f"cannot read {item.source}: {e}")
        if (item.id, key) in self.store.done:
            return self._skip(item, key)
        return _Loaded(item, payload, key)

    def _skip(self, item: Item, key: str) -> None:
        """Already embedded (None: skip it); its text is kept for a row that was stored without one."""
        if item.text is not None:
            self.store.skip_text(item.id, key, item.text)

    def _batches(self, corpus: Corpus, stats: RunStats, bar: tqdm) -> Iterator[list[_Loaded]]:
        batch: list[_Loaded] = []
        window = self.workers * 4 + self.batch_size
        for result in ordered_map(self._load, corpus.items, self.workers, window):
            if isinstance(result, _Loaded):
                batch.append(result)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
                continue
            if result is None:
                stats.skipped += 1
            else:
                stats.failed.append(result)
            bar.update(1)
        if batch:
            yield batch

    def _embed(self, kind: str, batch: list[_Loaded]) -> tuple[list[_Loaded], Any]:
        return batch, self.engine.embed(kind, [b.payload for b in batch])

    def run(self, corpus: Corpus) -> RunStats:
        stats = RunStats(total=len(corpus.items))
        if self.engine.model_id:
            self.store.check_model(self.engine.model_id)  # a model mismatch stops the run before any work
        started = time.monotonic()
        bar = tqdm(total=stats.total, unit=corpus.kind, disable=not self.progress, dynamic_ncols=True, smoothing=0.1)
        try:
            embedded = ordered_map(
                lambda b: self._embed(corpus.kind, b),
                self._batches(corpus, stats, bar),
                self.concurrency,
                self.concurrency,
            )
            for batch, result in embedded:
                rows = []
                for loaded, vector, truncated, error in zip(
                    batch, result.vectors, result.truncated, result.errors, strict=True
                ):
                    if error is not None or vector is None:
                        stats.failed.append(Failure(loaded.item, *(error or ("no_vector", "no vector came back"))))
                        continue
                    item = loaded.item
                    rows.append(Row(item.id, item.source, item.kind, loaded.key, vector, truncated, item.text))
                if rows:
                    self.store.add(rows, result.model, int(rows[0].vector.shape[0]))
                stats.embedded += len(rows)
                bar.update(len(batch))
        except ModelMismatchError:
            raise
        except BaseException:
            self.store.flush()  # keep every finished batch: a re-run resumes after it
            raise
        finally:
            bar.close()
            stats.seconds = time.monotonic() - started
        stats.rows = self.store.finalize()
        return stats
