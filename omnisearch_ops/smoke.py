"""The deploy command's smoke test: one text and one image through the API, or straight to the endpoint."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from omnisearch_embed.endpoint_status import describe_endpoint_status
from omnisearch_embed.errors import BackendUnavailableError
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.console import EXIT_FAILURE, fail
from omnisearch_ops.endpoint_admin import stack_outputs

SAMPLE_TEXT = "a photo of a red circle"


def sample_png() -> bytes:
    """The packager's sample image (its module loads no torch until asked to)."""
    from omnisearch_ops.verify_archive import sample_png as packager_sample

    return packager_sample()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except urllib.error.URLError as e:
        raise BackendUnavailableError(f"cannot reach {url}: {e.reason}", code="api_unreachable") from e
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"error": {"message": raw[:200].decode("utf-8", "replace")}}
    return status, payload, elapsed_ms


def smoke_test(target: AwsTarget, *, direct: bool = False, model: str = "", pretrained: str = "") -> int:
    """One text and one image, through the API (stack outputs + API key) or straight to the endpoint.

    ``model`` and ``pretrained`` name the model a direct call expects the endpoint to serve.
    """
    session = target.session()
    if direct:
        from omnisearch_embed.backends.sagemaker import SageMakerBackend
        from omnisearch_embed.settings import model_id_for

        name = target.endpoint
        status = describe_endpoint_status(session.client("sagemaker"), name)
        if status.endpoint_status != "InService":
            fail(f"endpoint {name} is {status.endpoint_status}, not InService: {status.failure_reason or 'wait'}")
        backend = SageMakerBackend(name, model_id_for(model, pretrained), client=session.client("sagemaker-runtime"))
        print(f"invoking endpoint {name} directly")
        for label, call in (
            ("text", lambda: backend.embed_texts([SAMPLE_TEXT])),
            ("image", lambda: backend.embed_images([sample_png()])),
        ):
            started = time.perf_counter()
            result = call()
            ms = (time.perf_counter() - started) * 1000
            print(f"  {label}: ok in {ms:.0f} ms, model {result.model}, dimension {result.dimension}")
        return 0
    stack = target.stack
    outputs = stack_outputs(session.client("cloudformation"), stack)
    if "ApiUrl" not in outputs or "ApiKeyId" not in outputs:
        fail(f"stack {stack} has no ApiUrl/ApiKeyId outputs")
    key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    base = outputs["ApiUrl"].rstrip("/")
    print(f"testing {base} (stack {stack})")
    failures = 0
    for label, path, body, content_type in (
        ("text", "/embed/text", json.dumps({"text": SAMPLE_TEXT}).encode(), "application/json"),
        ("image", "/embed/image", sample_png(), "image/png"),
    ):
        status, payload, ms = _post(base + path, body, {"Content-Type": content_type, "x-api-key": key})
        if status == 200:
            print(
                f"  {label}: HTTP 200 in {ms:.0f} ms, model {payload.get('model')}, "
                f"dimension {payload.get('dimension')}, service {payload.get('service')}"
            )
        else:
            failures += 1
            error = payload.get("error", {})
            print(f"  {label}: HTTP {status} in {ms:.0f} ms: {error.get('code', '')} {error.get('message', '')}")
    return EXIT_FAILURE if failures else 0
