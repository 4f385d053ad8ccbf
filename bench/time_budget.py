"""Time budget against a hanging endpoint: when the handler answers, with what, and how many invokes it sent.

The embed handler, its backend built by the core's factory (a real boto3 client), and a fake container over
real HTTP on 127.0.0.1 that never answers (``omnisearch_testkit/sagemaker_stubs.py``). The Lambda context says
``--left`` seconds remain (12 by default); the function is killed at that point, so the answer must come
before it. Each scenario prints the status and code, the wall time, the margin left on the context's clock,
and the invokes per endpoint.

Run: ``.venv/bin/python bench/time_budget.py [--left 12] [--quick]`` (``--quick``: 3 s left).
"""

from __future__ import annotations

import argparse
import json
import os
import time

for name, value in {
    "POWERTOOLS_SERVICE_NAME": "omnisearch-embed",
    "POWERTOOLS_METRICS_NAMESPACE": "OmniSearchEmbed",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(name, value)

PRIMARY, STANDBY = "omnisearch-embed-bench", "omnisearch-embed-bench-b"


def scenario(url: str, left: float, fallback: str) -> dict[str, object]:
    from local_server.lambda_context import LambdaContext
    from omnisearch_embed.backends.factory import backend_from_settings
    from omnisearch_embed.settings import Settings
    from omnisearch_testkit.events import load_event
    from omnisearch_testkit.lambda_function import load_function

    env = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": PRIMARY, "FALLBACK": fallback, "AWS_REGION": "us-east-1"}
    settings = Settings.from_env(env)
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = url
    embed_app = load_function("embed")
    embed_app._app = embed_app.build_app(backend_from_settings(settings), settings)
    context = LambdaContext(timeout_seconds=left)
    start = time.monotonic()
    response = embed_app.lambda_handler(load_event("embed_text", body={"text": "a red circle"}), context)
    end = time.monotonic()
    body = json.loads(response["body"])
    return {
        "status": response["statusCode"],
        "code": body.get("error", {}).get("code"),
        "seconds": round(end - start, 2),
        "before_deadline_s": round(context.ends_at - end, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--left", type=float, default=12.0, help="seconds left on the Lambda's clock")
    parser.add_argument("--quick", action="store_true", help="3 s left")
    args = parser.parse_args()
    left = 3.0 if args.quick else args.left

    from omnisearch_testkit.sagemaker_stubs import container_server

    for fallback in ("none", STANDBY):
        with container_server("ViT-B-32/openai", delay=float("inf")) as server:
            result = scenario(server.url, left, fallback)
            invokes = {PRIMARY: server.count(PRIMARY), STANDBY: server.count(STANDBY)}
        label = "fallback endpoint" if fallback != "none" else "no fallback"
        print(f"{label:18} {left:g} s left: {result}, invokes {invokes}")


if __name__ == "__main__":
    main()
