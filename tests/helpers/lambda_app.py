"""Drive ``functions/embed/app.py`` in tests: swap in a backend, invoke, read EMF metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import S3_BUCKET
from tests.helpers.backends import vector_for

SETTINGS = Settings(allowed_s3_buckets=(S3_BUCKET,), max_request_bytes=1 << 20)


def use_backend(monkeypatch: pytest.MonkeyPatch, backend: Backend, settings: Settings = SETTINGS) -> None:
    """Make the handler's cold-start app one built (by its own ``build_app``) around ``backend``."""
    monkeypatch.setattr(embed_app, "_app", embed_app.build_app(backend, settings))


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``lambda_handler(event)`` -> (status, parsed JSON body); every answer must be JSON."""
    response = embed_app.lambda_handler(event, LambdaContext())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"], response
    return response["statusCode"], json.loads(response["body"])


def text_vec(text: str, normalize: bool = True) -> list[float]:
    """What StaticBackend (dimension 8) answers for ``text``."""
    return vector_for("text", text.encode("utf-8"), 8, normalize)


def emf_blobs(out: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents printed on stdout."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
