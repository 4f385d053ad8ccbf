"""Embed a corpus (a folder or glob of images, a file of texts, an S3 prefix) into a vector file.

    omnisearch-embed-corpus photos/ --output photos.parquet                              # model in this process
    python scripts/embed_corpus.py captions.txt --output captions.parquet --engine api \\
        --api-url https://abc.execute-api.us-east-1.amazonaws.com/prod --api-key $KEY
    python scripts/embed_corpus.py s3://bucket/photos/ --output photos.parquet --engine endpoint
    python scripts/embed_corpus.py s3://bucket/photos/ --output photos.parquet --engine batch-transform \\
        --work-uri s3://bucket/embed-jobs/ --instance-count 4
    python scripts/embed_corpus.py photos/ --output photos.parquet --dry-run            # counts and cost

Output: Parquet (id, source, kind, content_key, vector, model, dimension, truncated, text) or, for a .npy path,
the matrix with <stem>.ids.jsonl and <stem>.meta.json. A re-run skips what is already embedded and appends.
Bad items go to <output>.errors.jsonl. Exit codes: 0 done, 1 failed (or items failed, unless
--allow-errors), 2 bad arguments, a bad setting, or a model that does not match the output's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from omnisearch_corpus import estimate, sources
from omnisearch_corpus.batch_transform import TransformOptions
from omnisearch_corpus.engines import EngineError
from omnisearch_corpus.pipeline import Pipeline, RunStats, write_errors
from omnisearch_corpus.store import ModelMismatchError, Store
from omnisearch_corpus.transform_run import TransformJob, run_batch_transform
from omnisearch_embed.errors import ConfigError
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID
from omnisearch_ops.aws import add_aws_arguments, from_args, target_from_args
from omnisearch_ops.console import EXIT_USAGE, fail, run_guarded

ENGINES = ("local", "api", "endpoint", "batch-transform")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="omnisearch-embed-corpus",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("source", help="folder, glob, text/JSONL/CSV file, or s3://bucket/prefix/")
    parser.add_argument("--output", "-o", type=Path, required=True, help="vector file: .parquet, or .npy")
    parser.add_argument("--engine", choices=ENGINES, default="local", help="who embeds (default local)")
    parser.add_argument("--kind", choices=(sources.IMAGE, sources.TEXT), help="force images or texts")
    parser.add_argument("--allow-errors", action="store_true", help="exit 0 even when some items failed")
    parser.add_argument("--dry-run", action="store_true", help="count the items and estimate the cost; embed nothing")
    parser.add_argument("--errors", type=Path, help="errors file (default <output>.errors.jsonl)")
    parser.add_argument("--id-field", default="id", help="JSONL/CSV id column (default id)")
    parser.add_argument("--text-field", default="text", help="JSONL/CSV text column (default text)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="items per model call or request (default 64). local: on a CPU keep it at CLIP_IMAGE_BATCH_SIZE;\n"
        "on a GPU raise it (e.g. 512) so images decode while the model works",
    )
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reader threads")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (api, endpoint; default 4)")
    parser.add_argument("--flush-every", type=int, default=256, help="rows per saved part (resume granularity)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    local = parser.add_argument_group("local engine")
    local.add_argument("--model", default=os.environ.get("CLIP_MODEL") or TINY_SHAPES_MODEL_ID, help="open_clip model")
    local.add_argument("--pretrained", default=os.environ.get("CLIP_PRETRAINED", ""), help="tag or checkpoint path")
    local.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    api = parser.add_argument_group("api engine")
    api.add_argument("--api-url", default=os.environ.get("OMNISEARCH_API_URL", "http://127.0.0.1:8000"))
    api.add_argument("--api-key", default=os.environ.get("API_KEY"), help="default: API_KEY")
    api.add_argument("--retries", type=int, default=6, help="retries on 429/5xx, with backoff (default 6)")
    add_aws_arguments(parser)
    aws = parser.add_argument_group("endpoint and batch-transform engines")
    aws.add_argument("--model-id", help="the model id the endpoint serves (default: learned from its answers)")
    aws.add_argument("--model-name", help="SageMaker model for Batch Transform (default: the endpoint's)")
    aws.add_argument("--work-uri", help="s3://bucket/prefix/ for the job's manifest, inputs and outputs")
    aws.add_argument("--instance-type", default="ml.g4dn.xlarge", help="Batch Transform instance type")
    aws.add_argument("--instance-count", type=int, default=1, help="Batch Transform instance count")
    aws.add_argument("--max-payload-mb", type=int, help="MaxPayloadInMB (default: 1 for texts, 6+ for images)")
    aws.add_argument("--split-type", choices=("None", "Line"), help="SplitType (default: Line texts, None images)")
    aws.add_argument("--batch-strategy", choices=("MultiRecord", "SingleRecord"), help="(default MultiRecord texts)")
    aws.add_argument("--max-concurrent-transforms", type=int, help="requests per instance (default 2 texts, 4 images)")
    aws.add_argument("--assemble-with", choices=("Line", "None"), default="Line", help="AssembleWith (default Line)")
    aws.add_argument("--poll-seconds", type=float, default=30.0, help="how often to check the job")
    aws.add_argument("--no-wait", action="store_true", help="start the job and exit; re-run to collect")
    aws.add_argument("--throughput", type=float, help="--dry-run: items/s per instance (default: an assumption)")
    aws.add_argument("--price-per-hour", type=float, help="--dry-run: instance price (default: the cost table)")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.workers, args.concurrency, args.flush_every, args.instance_count) < 1:
        parser.error("--batch-size, --workers, --concurrency, --flush-every and --instance-count must be >= 1")
    if args.engine == "batch-transform" and not args.work_uri and not args.dry_run:
        parser.error("--engine batch-transform needs --work-uri s3://bucket/prefix/")
    return args


def build_engine(args: argparse.Namespace) -> Any:
    if args.engine == "local":
        from omnisearch_corpus.engine_local import LocalEngine

        return LocalEngine(args.model, args.pretrained, args.device)
    if args.engine == "api":
        from omnisearch_corpus.engine_api import ApiEngine

        return ApiEngine(args.api_url, args.api_key, retries=args.retries, concurrency=args.concurrency)
    from omnisearch_corpus.engine_endpoint import EndpointEngine

    target = target_from_args(args)
    return EndpointEngine(
        target.endpoint, session=target.session(), model_id=args.model_id, concurrency=args.concurrency
    )


def summary(stats: RunStats, output: Path, errors: Path) -> str:
    lines = [
        f"embedded {stats.embedded} in {stats.seconds:.1f} s ({stats.rate:.1f}/s), skipped {stats.skipped} already "
        f"in {output}, failed {len(stats.failed)} of {stats.total}",
        f"{output}: {stats.rows} rows",
    ]
    if stats.failed:
        codes: dict[str, int] = {}
        for failure in stats.failed:
            codes[failure.code] = codes.get(failure.code, 0) + 1
        detail = ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
        lines.append(f"errors: {errors} ({detail})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The one place the parsed command line becomes typed calls."""
    target = target_from_args(args)
    errors_path = args.errors or args.output.with_name(args.output.name + ".errors.jsonl")
    fields = sources.TextFields(args.id_field, args.text_field)
    needs_s3 = args.source.startswith("s3://") or args.engine == "batch-transform"
    s3 = target.session().client("s3") if needs_s3 else None
    try:
        corpus = sources.discover(args.source, args.kind, fields, s3=s3)
        store = Store(args.output, flush_rows=args.flush_every).open()
    except (sources.SourceError, ModelMismatchError) as e:
        fail(str(e), EXIT_USAGE)
    if args.dry_run:
        print(
            estimate.report(
                corpus,
                store,
                instance_type=args.instance_type,
                instance_count=args.instance_count,
                throughput=args.throughput,
                price_per_hour=args.price_per_hour,
                batch_size=args.batch_size,
            )
        )
        return 0
    try:
        if args.engine == "batch-transform":
            sm = target.session().client("sagemaker")
            job = TransformJob(args.work_uri, target.endpoint, model_name=args.model_name, wait=not args.no_wait)
            stats = run_batch_transform(
                corpus, store, sm, s3, from_args(TransformOptions, args), job, progress=not args.no_progress
            )
        else:
            engine = build_engine(args)
            try:
                pipeline = Pipeline(
                    engine,
                    store,
                    batch_size=args.batch_size,
                    workers=args.workers,
                    concurrency=args.concurrency if args.engine != "local" else 1,
                    progress=not args.no_progress,
                    s3=s3,
                )
                stats = pipeline.run(corpus)
            finally:
                engine.close()
    except ModelMismatchError as e:
        fail(str(e), EXIT_USAGE)
    except ConfigError as e:  # a setting the model code reads (CLIP_ENGINE, CLIP_DECODE_THREADS, ...)
        fail(f"configuration error: {e}", EXIT_USAGE)
    except EngineError as e:
        fail(f"{e} (finished batches are kept in {args.output}.parts: re-run to resume)")
    if stats is None:  # batch transform started and not waited for
        return 0
    write_errors(errors_path, stats.failed)
    print(summary(stats, args.output, errors_path), flush=True)
    return 1 if stats.failed and not args.allow_errors else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
