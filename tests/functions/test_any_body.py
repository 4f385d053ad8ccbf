"""Property: every POST route answers any body under any Content-Type with JSON and no 5xx, and keeps serving.

Runs through ``lambda_handler`` with API Gateway events built as API Gateway builds them (binary media types
base64-encoded, other bodies as text), plus base64 for any type; the over-HTTP twin is in tests/local_server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

import functions.embed.app as embed_app
from local_server.apigw_event import is_binary
from local_server.lambda_context import LambdaContext
from omnisearch_testkit.events import S3_BUCKET, S3_KEY, load_event, make_event
from tests.helpers.backends import StaticBackend
from tests.helpers.fuzz import BOUNDED, PNG, Request, check_answer, post_paths, requests
from tests.helpers.lambda_app import SETTINGS, text_vec

APP = embed_app.build_app(StaticBackend(), SETTINGS)
PATHS = post_paths(APP)


@pytest.fixture(scope="module")
def handler() -> Iterator[None]:
    """The handler's app around a StaticBackend, with moto S3 holding the sample PNG."""
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=S3_BUCKET)
        s3.put_object(Bucket=S3_BUCKET, Key=S3_KEY, Body=PNG)
        mp.setattr(embed_app, "_app", APP)
        yield


def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = embed_app.lambda_handler(event, LambdaContext())
    body = response["body"].encode("utf-8")
    answer = check_answer(event["path"], response["statusCode"], response["multiValueHeaders"]["Content-Type"][0], body)
    return response["statusCode"], answer


def test_every_post_route_is_fuzzed() -> None:
    assert {"/embed/text", "/embed/image", "/embed/batch/text", "/embed/batch/image", "/v1/embeddings"} <= set(PATHS)


@settings(BOUNDED, max_examples=400)
@given(request=requests(PATHS), force_base64=st.booleans())
def test_any_body_any_content_type_is_answered_with_json_and_no_5xx(
    handler: None, request: Request, force_base64: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"Content-Type": request.content_type or None}
    if is_binary(request.content_type) or force_base64:
        body: Any = request.body  # bytes: base64 with isBase64Encoded, as for API Gateway's binary media types
    else:
        body = request.body.decode("utf-8", errors="replace")
    _call(make_event("POST", request.path, body=body or None, headers=headers))
    status, good = _call(load_event("embed_text"))
    assert status == 200 and good["embedding"] == text_vec("a red circle")
    capsys.readouterr()  # drop the EMF lines of this example


def test_the_fuzzed_classes_are_refused_with_their_codes(handler: None) -> None:
    """The classes that were 500s, pinned so a shrunk strategy cannot lose them."""
    cases = [
        ("/embed/image", "application/json", '{"image": ', "invalid_json"),
        ("/embed/text", "multipart/form-data", "{}", "unsupported_media_type"),
        ("/embed/batch/text", "multipart/form-data", "{}", "unsupported_media_type"),
        ("/v1/embeddings", "multipart/form-data", "{}", "unsupported_media_type"),
        ("/embed/text", "application/json", json.dumps({"text": "\ud800"}), "invalid_text"),
        ("/embed/batch/text", "application/json", json.dumps({"texts": ["\ud800"]}), "invalid_text"),
        ("/v1/embeddings", "application/json", json.dumps({"input": "\ud800", "model": "static-test"}), "invalid_text"),
        ("/embed/batch/image", "application/json", "[" * 50_000, "invalid_json"),
    ]
    for path, ctype, body, code in cases:
        status, answer = _call(make_event("POST", path, body=body, headers={"Content-Type": ctype}))
        assert 400 <= status < 500 and answer["error"]["code"] == code, (path, ctype, answer)
