"""The batch-transform run: stage what is left, start the job (or attach to the saved one), wait, join, store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from omnisearch_corpus import batch_transform as bt
from omnisearch_corpus.pipeline import Failure, RunStats
from omnisearch_corpus.sources import IMAGE, Corpus, Item, read_item
from omnisearch_corpus.store import Row, Store


@dataclass(frozen=True)
class TransformJob:
    """Where the job stages its files, which SageMaker model runs it (default: the endpoint's), and whether to wait."""

    work_uri: str
    endpoint_name: str
    model_name: str | None = None
    wait: bool = True


def state_path(store: Store) -> Path:
    return store.path.with_name(store.path.name + ".transform.json")


def _todo(corpus: Corpus, store: Store, stats: RunStats) -> list[tuple[Item, str]]:
    """Items not yet embedded (texts with their text; local images hashed to skip what is done)."""
    todo = []
    for item in corpus.items:
        if item.error is not None or (item.kind == IMAGE and item.size == 0):
            stats.failed.append(Failure(item, *(item.error or ("empty_image", "the image object is empty"))))
            continue
        key = item.key
        if key is None and item.path is not None:
            key = read_item(item)[1]
            item = Item(item.id, item.source, item.kind, path=item.path, key=key, size=item.size)
        if (item.id, key) in store.done:
            stats.skipped += 1
            if item.text is not None and key is not None:
                store.skip_text(item.id, key, item.text)
            continue
        todo.append((item, item.text or ""))
    return todo


def _start(corpus: Corpus, store: Store, sm: Any, s3: Any, opts: bt.TransformOptions, job: TransformJob) -> dict:
    stats = RunStats()
    todo = _todo(corpus, store, stats)
    model_name = job.model_name or bt.model_for_endpoint(sm, job.endpoint_name)
    plan = bt.stage(todo, corpus.kind, s3, job.work_uri, bt.job_name(), opts)
    plan["model_name"] = model_name
    failed = [[f.item.id, f.item.source, f.code, f.message] for f in stats.failed]
    plan["pre"] = {"skipped": stats.skipped, "failed": failed}
    request = bt.job_request(plan, opts, model_name)
    save_state(store, plan)  # before the job exists: a crash right after still finds it
    sm.create_transform_job(**request)
    print(f"started Batch Transform job {plan['job_name']} on {model_name}: {len(todo)} {corpus.kind}s", flush=True)
    return plan


def save_state(store: Store, plan: dict) -> None:
    bt.save_state(state_path(store), plan)


def run_batch_transform(
    corpus: Corpus,
    store: Store,
    sm: Any,
    s3: Any,
    opts: bt.TransformOptions,
    job: TransformJob,
    *,
    progress: bool,
) -> RunStats | None:
    """Start (or attach to) the job, wait with progress, join the output to ids and store it; None when not waiting."""
    plan = bt.load_state(state_path(store))
    if plan is None:
        plan = _start(corpus, store, sm, s3, opts, job)
    else:
        print(f"attaching to Batch Transform job {plan['job_name']} (from {state_path(store)})", flush=True)
    if not job.wait:
        print("not waiting: re-run the same command to collect the results", flush=True)
        return None
    started = time.monotonic()
    bar = tqdm(total=len(plan["outputs"]), unit="output", disable=not progress, dynamic_ncols=True)

    def on_progress(done: int, expected: int, status: str) -> None:
        bar.set_postfix_str(status)
        bar.update(max(0, done - bar.n))

    try:
        status = bt.wait(sm, s3, plan, opts.poll_seconds, on_progress)
    except KeyboardInterrupt:
        print(f"\njob {plan['job_name']} keeps running: re-run the same command to collect it", flush=True)
        raise
    finally:
        bar.close()
    reason = status.get("FailureReason") or ""
    if status["TransformJobStatus"] != "Completed":
        print(f"job {plan['job_name']} ended {status['TransformJobStatus']}: {reason}", flush=True)
    stats = _store_outcomes(plan, bt.collect(s3, plan, reason), store)
    stats.seconds = time.monotonic() - started
    stats.rows = store.finalize()
    state_path(store).unlink(missing_ok=True)
    return stats


def _store_outcomes(plan: dict, outcomes: list[bt.Outcome], store: Store) -> RunStats:
    stats = RunStats(skipped=plan["pre"]["skipped"])
    for item_id, source, code, message in plan["pre"]["failed"]:
        stats.failed.append(Failure(Item(item_id, source, plan["kind"]), code, message))
    rows, model = [], None
    for outcome in outcomes:
        info = plan["items"][outcome.item_id]
        item = Item(outcome.item_id, info["source"], plan["kind"], key=info["key"])
        if outcome.vector is None:
            stats.failed.append(Failure(item, *(outcome.error or ("no_vector", "no vector"))))
            continue
        model = model or outcome.model
        if outcome.model != model:
            stats.failed.append(Failure(item, "model_mismatch", f"answered by {outcome.model}, not {model}"))
            continue
        rows.append(
            Row(item.id, item.source, plan["kind"], info["key"], outcome.vector, outcome.truncated, info.get("text"))
        )
    if rows and model:
        store.add(rows, model, int(rows[0].vector.shape[0]))
    stats.embedded = len(rows)
    stats.total = stats.embedded + stats.skipped + len(stats.failed)
    return stats
