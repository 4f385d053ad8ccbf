"""``--dry-run``: what a run would do (items to embed, already embedded, bad) and what Batch Transform would cost."""

from __future__ import annotations

from dataclasses import dataclass

from omnisearch_corpus.sources import IMAGE, Corpus
from omnisearch_corpus.store import Store
from omnisearch_ops.costs import PRICE_REGION, batch_transform_estimate

# Items per second per instance assumed when no --throughput is given (ViT-B-32, the stock container):
# images one object per request, decode-bound; texts many records per request. Measure yours and pass it.
ASSUMED_THROUGHPUT = {("image", True): 150.0, ("text", True): 1500.0, ("image", False): 15.0, ("text", False): 150.0}


@dataclass
class Plan:
    total: int
    bad: int
    done: int  # known to be in the output already (texts and S3 objects; files are hashed at run time)
    todo: int
    bytes_todo: int


def plan(corpus: Corpus, store: Store) -> Plan:
    bad = sum(1 for i in corpus.items if i.error is not None)
    done = sum(1 for i in corpus.items if i.error is None and i.key is not None and (i.id, i.key) in store.done)
    todo = [i for i in corpus.items if i.error is None and not (i.key is not None and (i.id, i.key) in store.done)]
    size = sum(i.size or (len(i.text.encode()) if i.text else 0) for i in todo)
    return Plan(len(corpus.items), bad, done, len(todo), size)


def is_gpu(instance_type: str) -> bool:
    return instance_type.split(".")[1][:1] in ("g", "p") if instance_type.count(".") >= 2 else False


def report(
    corpus: Corpus,
    store: Store,
    *,
    instance_type: str,
    instance_count: int,
    throughput: float | None,
    price_per_hour: float | None,
    batch_size: int,
) -> str:
    p = plan(corpus, store)
    rate = throughput or ASSUMED_THROUGHPUT[(corpus.kind, is_gpu(instance_type))]
    est = batch_transform_estimate(
        instance_type, items=p.todo, items_per_second=rate, instance_count=instance_count, price_per_hour=price_per_hour
    )
    noun = "images" if corpus.kind == IMAGE else "texts"
    local_images = corpus.kind == IMAGE and corpus.s3_prefix is None
    batches = -(-p.todo // max(1, batch_size))
    lines = [
        f"{p.total} {noun} found ({corpus.ignored} other files ignored)",
        f"  already in {store.path}: {p.done}" + (" (local files are hashed at run time)" if local_images else ""),
        f"  bad before embedding: {p.bad}",
        f"  to embed: {p.todo} ({p.bytes_todo / 1e6:.1f} MB), {batches} batches of {batch_size}",
        "",
        f"Batch Transform estimate: {instance_count} x {instance_type} at ${est.price_per_hour:.4f}/h",
        f"  {rate:g} {noun}/s per instance{' (assumed; pass --throughput)' if throughput is None else ''},"
        f" {est.startup_seconds / 60:.0f} min start-up",
        f"  about {est.seconds / 60:.1f} min, {est.instance_hours:.2f} instance-hours, ${est.usd:.2f}",
        f"  (on-demand {PRICE_REGION} list prices, billed per instance-second; S3 requests and storage extra)",
    ]
    return "\n".join(lines)
