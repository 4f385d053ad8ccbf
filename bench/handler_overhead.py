"""Handler overhead: warm per-request time and cold import of the embed Lambda.

1. Warm: the embed route through ``functions/embed/app.py`` with an in-process backend returning a fixed
   512-d matrix (ViT-B-32's size), against a minimal Powertools route on the same event. Both bare
   (``app.resolve``) and under the handler decorators (Logger, Tracer, Metrics). Target: <= 2x.
2. Cold: ``import app`` (functions/embed on the path, as Lambda's /var/task, plus the layer) against
   ``import boto3`` alone, each in a fresh interpreter, several times; medians. Target: <= 1.5x.
   Also shown: the first request after the import (which builds the app lazily) and an eager init.

Run: ``.venv/bin/python bench/handler_overhead.py [--repeats 7] [--requests 2000]``. Prints figures only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": "omnisearch-embed",
    "POWERTOOLS_METRICS_NAMESPACE": "OmniSearchEmbed",
    "USE_SAGEMAKER": "true",
    "SAGEMAKER_ENDPOINT_NAME": "omnisearch-embed-dev",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "embed"),  # as in Lambda: Tracer is enabled
}
os.environ.update({k: v for k, v in LAMBDA_ENV.items() if k != "LAMBDA_TASK_ROOT"})
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # in-process warm runs: no X-Ray daemon here


class FixedBackend:
    """Answers every call with the same 512-d unit vector per item: only the handler path is measured."""

    def __init__(self, dimension: int = 512) -> None:
        from omnisearch_embed.embeddings import SERVICE_SAGEMAKER

        self.model_id = "ViT-B-32/openai"
        self.service = SERVICE_SAGEMAKER
        self.dimension = dimension
        self.row = [1.0 / dimension**0.5] * dimension

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Any:
        from omnisearch_embed.embeddings import Embeddings

        n = len(texts)
        return Embeddings([self.row] * n, self.model_id, self.service, self.dimension, [False] * n, [5] * n)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Any:
        from omnisearch_embed.embeddings import Embeddings

        return Embeddings([self.row] * len(images), self.model_id, self.service, self.dimension)

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}


def per_request_us(call: Callable[[], Any], requests: int, repeats: int) -> float:
    for _ in range(min(200, requests)):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(requests):
            call()
        samples.append((time.perf_counter() - start) / requests * 1e6)
    return statistics.median(samples)


def warm(requests: int, repeats: int) -> None:
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.metrics import MetricUnit
    from pydantic import BaseModel, ConfigDict

    from local_server.lambda_context import LambdaContext
    from omnisearch_embed.settings import Settings
    from omnisearch_testkit.events import load_event
    from omnisearch_testkit.lambda_function import load_function

    embed_app = load_function("embed")
    ctx = LambdaContext()
    embed_app._app = embed_app.build_app(FixedBackend(), Settings())

    minimal = APIGatewayRestResolver()

    @minimal.post("/embed/text")
    def minimal_route() -> dict[str, Any]:
        return {"ok": True}

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        text: str

    validated = APIGatewayRestResolver(enable_validation=True)

    @validated.post("/embed/text")
    def validated_route(body: Body) -> dict[str, Any]:
        return {"ok": True}

    logger, tracer, metrics = Logger(), Tracer(auto_patch=False), Metrics()

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def minimal_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="requests", unit=MetricUnit.Count, value=1)
        return minimal.resolve(event, context)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def validated_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="requests", unit=MetricUnit.Count, value=1)
        return validated.resolve(event, context)

    cases = {
        "text (1 x 512-d, float)": load_event("embed_text"),
        "text (1 x 512-d, base64)": load_event("embed_text", body={"text": "a red circle", "encoding": "base64"}),
        "image (raw 32x32 PNG)": load_event("embed_image_raw_png"),
    }
    event = cases["text (1 x 512-d, float)"]
    check = embed_app.lambda_handler(event, ctx)
    assert check["statusCode"] == 200 and len(json.loads(check["body"])["embedding"]) == 512, check
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metrics print one line per request
        base_bare = per_request_us(lambda: minimal.resolve(event, ctx), requests, repeats)
        base_full = per_request_us(lambda: minimal_handler(event, ctx), requests, repeats)
        valid_bare = per_request_us(lambda: validated.resolve(event, ctx), requests, repeats)
        valid_full = per_request_us(lambda: validated_handler(event, ctx), requests, repeats)
        rows = []
        for name, ev in cases.items():
            bare = per_request_us(lambda ev=ev: embed_app._app.resolve(ev, ctx), requests, repeats)
            full = per_request_us(lambda ev=ev: embed_app.lambda_handler(ev, ctx), requests, repeats)
            rows.append((name, bare, full))
    print("warm per request (median of repeats), same event; baselines return {'ok': True}")
    print("  ratios: first vs the minimal route, [bracketed] vs the minimal route with validation and a pydantic body")
    print(
        f"  minimal route (no validation)    app.resolve {base_bare:8.1f} us"
        f"            lambda_handler {base_full:8.1f} us"
    )
    print(
        f"  minimal route (validation)       app.resolve {valid_bare:8.1f} us ({valid_bare / base_bare:4.2f}x)"
        f"   lambda_handler {valid_full:8.1f} us ({valid_full / base_full:4.2f}x)"
    )
    for name, bare, full in rows:
        print(
            f"  embed {name:<26} app.resolve {bare:8.1f} us ({bare / base_bare:5.2f}x) [{bare / valid_bare:4.2f}x]"
            f"   lambda_handler {full:8.1f} us ({full / base_full:4.2f}x) [{full / valid_full:4.2f}x]"
        )


FIRST_REQUEST = """
import contextlib, io, json, time
from local_server.lambda_context import LambdaContext
t = time.perf_counter()
import app
context = LambdaContext()
with contextlib.redirect_stdout(io.StringIO()):
    response = app.lambda_handler(json.loads(EVENT), context)
elapsed = time.perf_counter() - t
assert response["statusCode"] == 200, response
print(elapsed)
"""


def fresh(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=str(ROOT)
    ).stdout
    return float(out.strip().splitlines()[-1])


def cold(repeats: int) -> None:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_TRACE", "PYTHONPATH"))}
    lambda_env = {
        **base_env,
        **LAMBDA_ENV,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "embed"), str(ROOT / "layers" / "common")]),
    }
    timer = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    first_request = FIRST_REQUEST.replace("EVENT", repr((ROOT / "events" / "health.json").read_text()))
    cases = [
        ("import boto3", timer.format(stmt="import boto3"), lambda_env),
        ("import app (tracing on, as in Lambda)", timer.format(stmt="import app"), lambda_env),
        (
            "import app (tracing off)",
            timer.format(stmt="import app"),
            {**lambda_env, "POWERTOOLS_TRACE_DISABLED": "true"},
        ),
        ("import app + first request (/health)", first_request, lambda_env),
        (
            "import app, eager (provisioned concurrency)",
            timer.format(stmt="import app"),
            {**lambda_env, "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"},
        ),
    ]
    results: dict[str, float] = {}
    for _ in range(repeats):  # interleaved, so a busy moment on the machine hits every case alike
        for name, code, env in cases:
            results.setdefault(name, [])  # type: ignore[arg-type]
            results[name].append(fresh(code, env))  # type: ignore[attr-defined]
    base = statistics.median(results["import boto3"])  # type: ignore[arg-type]
    print(f"cold import in a fresh interpreter (median of {repeats}; interpreter start-up excluded)")
    for name, _, _ in cases:
        value = statistics.median(results[name])  # type: ignore[arg-type]
        print(f"  {name:<44} {value * 1000:7.1f} ms  ({value / base:4.2f}x boto3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--skip-warm", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    if not args.skip_warm:
        warm(args.requests, args.repeats)
    if not args.skip_cold:
        cold(args.repeats)


if __name__ == "__main__":
    main()
