"""Corpus indexing throughput: omnisearch_corpus's engines against what they wrap, ViT-B-32 random, CPU.

1. ``local`` images/s (a folder of JPEGs -> Parquet: reading, decoding, preprocessing, the model, the file)
   against the raw model alone: ``encode_image`` on ready tensors at batch 32. Target >= 0.9x.
2. ``api`` texts/s against the local server over real HTTP (concurrent batch requests) against the same
   batch route resolved in process (the Powertools app, no HTTP), one batch after another. Target >= 0.8x.

The model is loaded once, outside the timings. One run each; ``--quick`` for a small count. Keep
``--batch-size`` at inference.py's image batch (64): a larger request makes predict_fn decode the next
images while the model runs, and on a 2-core CPU that slowed the model far more than it saved (0.4-0.5x).
Run: ``.venv/bin/python bench/corpus.py [--quick] [--images 256] [--texts 2048]``. Prints figures and ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "omnisearch-embed")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OmniSearchEmbed")

MODEL = "ViT-B-32"
RAW_BATCH = 32
WORDS = (
    "red", "blue", "green", "small", "large", "photo", "of", "a", "the",
    "dog", "cat", "circle", "square", "on", "white", "table", "street", "night",
)  # fmt: skip


def make_images(folder: Path, count: int) -> None:
    """Noise-textured JPEGs of a typical web size (decoding is real work, as with photos)."""
    from PIL import Image

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = Image.effect_noise((480, 360), rng.uniform(20, 80)).convert("RGB")
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=85)
        (folder / f"{i:05d}.jpg").write_bytes(buffer.getvalue())


def make_texts(count: int) -> list[str]:
    rng = random.Random(1)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) for _ in range(count)]


def raw_model_images_per_s(backend, folder: Path) -> float:
    """encode_image on preprocessed tensors at batch 32: what the model alone does."""
    import torch

    clip = backend._clip
    from PIL import Image

    tensors = [clip.preprocess(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))]
    batches = [torch.stack(tensors[i : i + RAW_BATCH]) for i in range(0, len(tensors), RAW_BATCH)]

    def run() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                clip.model.encode_image(batch.to(clip.device, dtype=clip.dtype))
        return time.perf_counter() - started

    seconds = backend._on_model_thread(run)  # the model's own thread, as the engine uses it
    return len(tensors) / seconds


def local_images_per_s(engine, folder: Path, out: Path, batch_size: int) -> float:
    from omnisearch_corpus.pipeline import Pipeline
    from omnisearch_corpus.sources import discover
    from omnisearch_corpus.store import Store

    stats = Pipeline(engine, Store(out).open(), batch_size=batch_size, workers=2, progress=False).run(
        discover(str(folder))
    )
    assert stats.embedded == len(list(folder.glob("*.jpg"))) and not stats.failed
    return stats.rate


def in_process_texts_per_s(backend, texts: list[str], batch_size: int) -> float:
    """The batch route through the Powertools app, no HTTP, one batch after another."""
    from local_server.lambda_context import LambdaContext
    from omnisearch_embed.api import create_app
    from omnisearch_embed.settings import Settings
    from omnisearch_testkit.events import make_event

    app = create_app(backend, Settings())
    events = [
        make_event("POST", "/embed/batch/text", body={"texts": texts[i : i + batch_size], "encoding": "base64"})
        for i in range(0, len(texts), batch_size)
    ]
    started = time.perf_counter()
    for event in events:
        response = app.resolve(event, LambdaContext())
        assert response["statusCode"] == 200, response["body"][:200]
    return len(texts) / (time.perf_counter() - started)


def api_texts_per_s(backend, texts: list[str], folder: Path, batch_size: int, concurrency: int) -> float:
    from local_server.background import serve_in_thread
    from local_server.server import LocalServer
    from omnisearch_corpus.engine_api import ApiEngine
    from omnisearch_corpus.pipeline import Pipeline
    from omnisearch_corpus.sources import discover
    from omnisearch_corpus.store import Store
    from omnisearch_embed.settings import Settings

    source = folder / "texts.txt"
    source.write_text("\n".join(texts) + "\n")
    server = LocalServer(backend, Settings())
    with serve_in_thread(server) as url:
        engine = ApiEngine(url, concurrency=concurrency)
        store = Store(folder / "texts.parquet").open()
        pipeline = Pipeline(engine, store, batch_size=batch_size, concurrency=concurrency, progress=False)
        stats = pipeline.run(discover(str(source)))
        engine.close()
    server.close()
    assert stats.embedded == len(texts) and not stats.failed
    return stats.rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 images, 512 texts")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64, help="embed_corpus --batch-size (default 64)")
    parser.add_argument("--concurrency", type=int, default=4, help="api requests in flight (default 4)")
    args = parser.parse_args(argv)
    images, count = (64, 512) if args.quick else (args.images, args.texts)

    from omnisearch_corpus.engine_local import LocalEngine

    engine = LocalEngine(MODEL, "", "cpu")  # random weights: only timing matters
    backend = engine.backend
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        folder = Path(tmp) / "images"
        make_images(folder, images)
        results["raw_model_images_per_s"] = raw_model_images_per_s(backend, folder)
        results["local_images_per_s"] = local_images_per_s(engine, folder, Path(tmp) / "i.parquet", args.batch_size)
        texts = make_texts(count)
        in_process_texts_per_s(backend, texts[: args.batch_size], args.batch_size)  # warm the route
        results["in_process_texts_per_s"] = in_process_texts_per_s(backend, texts, args.batch_size)
        results["api_texts_per_s"] = api_texts_per_s(backend, texts, Path(tmp), args.batch_size, args.concurrency)
    local_ratio = results["local_images_per_s"] / results["raw_model_images_per_s"]
    api_ratio = results["api_texts_per_s"] / results["in_process_texts_per_s"]
    print(f"{MODEL} random weights, CPU, {images} images (480x360 JPEG), {count} texts, batch {args.batch_size}")
    print(f"  raw model, batch {RAW_BATCH}:      {results['raw_model_images_per_s']:8.1f} images/s")
    local = results["local_images_per_s"]
    print(f"  embed_corpus --engine local: {local:8.1f} images/s  ({local_ratio:.2f}x, target 0.9x)")
    print(f"  batch route in process:      {results['in_process_texts_per_s']:8.1f} texts/s")
    print(f"  embed_corpus --engine api:   {results['api_texts_per_s']:8.1f} texts/s   ({api_ratio:.2f}x, target 0.8x)")
    print(
        json.dumps(
            {
                **{k: round(v, 1) for k, v in results.items()},
                "local_ratio": round(local_ratio, 3),
                "api_ratio": round(api_ratio, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
