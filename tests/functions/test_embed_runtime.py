"""The embed Lambda's runtime behaviour: EMF metrics, structured logs, fallback, and its cold start."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import functions.embed.app as embed_app
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.errors import BackendUnavailableError
from omnisearch_testkit.events import load_event
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import emf_blobs, invoke, text_vec, use_backend


@pytest.fixture
def call(monkeypatch: pytest.MonkeyPatch) -> Any:
    use_backend(monkeypatch, StaticBackend())
    return invoke


# ------------------------------------------------------------------------------------ observability
def test_metrics_requests_items_latency_and_errors_by_code(call: Any, capsys: pytest.CaptureFixture[str]) -> None:
    call(load_event("embed_batch_text"))
    blobs = emf_blobs(capsys.readouterr().out)
    main = next(b for b in blobs if "requests" in b)
    assert main["requests"] == [1.0] and main["text_items"] == [3.0] and main["backend_latency"][0] >= 0
    assert "fallback_used" not in main
    assert main["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OmniSearchEmbed"

    call(load_event("embed_text", body={"text": ""}))
    errors = [b for b in emf_blobs(capsys.readouterr().out) if "errors" in b]
    assert len(errors) == 1 and errors[0]["code"] == "empty_text" and errors[0]["status_class"] == "4xx"


def test_logs_carry_the_request_id_and_never_the_body(call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()  # the Powertools handler keeps the stream it was created with: read it directly
    monkeypatch.setattr(embed_app.logger.registered_handler, "stream", stream)
    secret = "my-private-query-text-1234"
    event = load_event("embed_text", body={"text": secret, "extra": 1})
    call(event)
    call(load_event("embed_text", body={"text": secret}))
    written = stream.getvalue()
    logs = [json.loads(line) for line in written.splitlines()]
    assert logs and secret not in written
    refused = [entry for entry in logs if entry.get("error_code") == "validation_error"]
    assert refused and refused[0]["correlation_id"] == event["requestContext"]["requestId"]


# ------------------------------------------------------------------------------------ fallback and cold start
def test_fallback_answer_says_local_and_counts_in_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = StaticBackend(service="sagemaker", fail_with=BackendUnavailableError("down", code="endpoint_unavailable"))
    backend = FallbackBackend(down, StaticBackend(service="local"))
    use_backend(monkeypatch, backend)
    status, body = invoke(load_event("embed_text"))
    assert status == 200 and body["service"] == "local"
    assert body["embedding"] == text_vec("a red circle")
    main = next(b for b in emf_blobs(capsys.readouterr().out) if "requests" in b)
    assert main["fallback_used"] == [1.0]


def _import_app(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_LAMBDA_INITIALIZATION_TYPE")}
    clean["PYTHONPATH"] = os.pathsep.join([str(root / "functions" / "embed"), str(root / "layers" / "common")])
    return subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True, timeout=120, cwd=root
    )


LAMBDA_ENV = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": "omnisearch-embed-dev"}
CHECK_LAZY = (
    "import sys, app; print(app._app is not None, "
    "[m for m in ('boto3', 'pydantic', 'PIL', 'omnisearch_embed.api') if m in sys.modules])"
)


def test_cold_import_defers_the_app_and_its_heavy_imports() -> None:
    result = _import_app(LAMBDA_ENV, CHECK_LAZY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False []"


def test_provisioned_concurrency_builds_the_app_during_init() -> None:
    result = _import_app({**LAMBDA_ENV, "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, CHECK_LAZY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True ") and "omnisearch_embed.api" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"USE_SAGEMAKER": "maybe"}, "USE_SAGEMAKER='maybe' is not a boolean"),
        ({"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": ""}, "needs SAGEMAKER_ENDPOINT_NAME"),
        ({**LAMBDA_ENV, "MAX_BATCH_ITEMS": "many"}, "MAX_BATCH_ITEMS='many' is not an integer"),
    ],
)
def test_a_wrong_environment_fails_the_cold_start_not_each_request(env: dict[str, str], message: str) -> None:
    result = _import_app(env, "import app")
    assert result.returncode != 0 and "ConfigError" in result.stderr and message in result.stderr
