"""One time budget: the handler answers its own 504 before the Lambda's deadline, and never resends a slow invoke.

A fake container over real HTTP (hanging, slow or throttling, counting invocations per endpoint), a real boto3
client built by the backend factory (AWS_ENDPOINT_URL_* point it here) and a Lambda context whose
remaining time the test sets. Assertions are on invoke counts and on the ordering "answered before the
context's deadline", never on how long something took.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.settings import Settings
from omnisearch_testkit.events import load_event, sample_png
from omnisearch_testkit.sagemaker_stubs import ContainerServer, container_server, serving
from tests.helpers.lambda_app import use_backend

PRIMARY, STANDBY = "omnisearch-embed-test", "omnisearch-embed-standby"
MODEL = "ViT-B-32/openai"
BUCKET = "budget-test-images"
HANG = float("inf")


def cloud_settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "USE_SAGEMAKER": "true",
            "SAGEMAKER_ENDPOINT_NAME": PRIMARY,
            "CLIP_MODEL": "ViT-B-32",
            "CLIP_PRETRAINED": "openai",
            "AWS_REGION": "us-east-1",
            "ALLOWED_S3_BUCKETS": BUCKET,
            "DEADLINE_MARGIN_SECONDS": "0.5",
            **env,
        }
    )


@pytest.fixture
def endpoint_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    def point(url: str, settings: Settings) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        use_backend(monkeypatch, backend_from_settings(settings), settings)  # the factory's own client

    return point


def call(event: dict[str, Any], context: LambdaContext | None) -> tuple[int, dict[str, Any], float]:
    """(status, body, monotonic time at which the handler returned)."""
    response = embed_app.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"]), time.monotonic()


def text_event() -> dict[str, Any]:
    return load_event("embed_text", body={"text": "a red circle"})


def test_a_hanging_endpoint_gets_our_504_before_the_deadline_after_one_invoke(endpoint_at: Any) -> None:
    with container_server(MODEL, delay=HANG) as server:
        endpoint_at(server.url, cloud_settings())
        context = LambdaContext(timeout_seconds=2.5)
        status, body, answered = call(text_event(), context)
        assert (status, body["error"]["code"]) == (504, "backend_timeout")
        assert answered < context.ends_at
        assert server.count(PRIMARY) == 1  # the read timeout used the budget once; no resend


def test_with_a_fallback_both_hanging_endpoints_are_called_once_and_the_504_is_in_time(endpoint_at: Any) -> None:
    with container_server(MODEL, delay=HANG) as server:
        endpoint_at(server.url, cloud_settings(FALLBACK=STANDBY))
        context = LambdaContext(timeout_seconds=3.0)
        status, body, answered = call(text_event(), context)
        assert status == 504 and body["error"]["code"] in ("backend_timeout", "deadline_exceeded")
        assert answered < context.ends_at
        assert (server.count(PRIMARY), server.count(STANDBY)) == (1, 1)


def test_a_hanging_primary_leaves_the_fallback_time_to_answer(endpoint_at: Any) -> None:
    with container_server(MODEL, delays={PRIMARY: HANG}) as server:
        endpoint_at(server.url, cloud_settings(FALLBACK=STANDBY))
        context = LambdaContext(timeout_seconds=3.0)
        status, body, answered = call(text_event(), context)
        assert status == 200 and len(body["embedding"]) == body["dimension"]
        assert answered < context.ends_at
        assert (server.count(PRIMARY), server.count(STANDBY)) == (1, 1)


def test_a_spent_budget_sends_nothing(endpoint_at: Any) -> None:
    with container_server(MODEL) as server:
        endpoint_at(server.url, cloud_settings())
        status, body, _ = call(text_event(), LambdaContext(timeout_seconds=0.4))  # less than the 0.5 s margin
        assert (status, body["error"]["code"]) == (504, "deadline_exceeded")
        assert server.count(PRIMARY) == 0


def test_throttling_is_retried_within_the_budget(endpoint_at: Any) -> None:
    with container_server(MODEL, throttle=1) as server:
        endpoint_at(server.url, cloud_settings())
        context = LambdaContext(timeout_seconds=6.0)
        status, body, answered = call(text_event(), context)
        assert status == 200 and body["dimension"] == 8
        assert answered < context.ends_at
        assert server.count(PRIMARY) == 2


def test_throttling_is_not_retried_past_the_budget(endpoint_at: Any) -> None:
    with container_server(MODEL, throttle=100) as server:
        endpoint_at(server.url, cloud_settings())
        context = LambdaContext(timeout_seconds=1.2)  # 0.7 s of budget: one attempt and maybe a short-backoff retry
        status, body, answered = call(text_event(), context)
        assert (status, body["error"]["code"]) == (429, "throttled")
        assert answered < context.ends_at
        assert 1 <= server.count(PRIMARY) <= 3


def test_a_refused_connection_is_retried_then_a_503(endpoint_at: Any) -> None:
    closed = ContainerServer(MODEL)  # bound, never served, then closed: its port refuses connections
    url = closed.url
    closed._server.server_close()
    endpoint_at(url, cloud_settings())
    status, body, _ = call(text_event(), LambdaContext(timeout_seconds=5.0))
    assert (status, body["error"]["code"]) == (503, "endpoint_unreachable")


def test_without_a_context_the_backends_own_timeout_applies(endpoint_at: Any) -> None:
    with container_server(MODEL) as server:
        endpoint_at(server.url, cloud_settings())
        status, body, _ = call(text_event(), None)
        assert status == 200 and body["dimension"] == 8
        assert server.count(PRIMARY) == 1


# --- S3 under the same budget ---------------------------------------------------------------------------


class HangingS3:
    """Any request hangs until close; requests are counted."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                outer.released.wait()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def hanging_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingS3]:
    s3 = HangingS3()
    with serving(s3.server, s3.released):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
        yield s3


def test_a_hanging_s3_read_is_a_504_in_time_and_the_endpoint_is_never_called(
    endpoint_at: Any, hanging_s3: HangingS3
) -> None:
    with container_server(MODEL) as server:
        endpoint_at(server.url, cloud_settings())
        context = LambdaContext(timeout_seconds=2.5)
        event = load_event("embed_image_s3", body={"s3_uri": f"s3://{BUCKET}/cat.png"})
        status, body, answered = call(event, context)
        assert (status, body["error"]["code"]) == (504, "s3_timeout")
        assert answered < context.ends_at
        assert len(hanging_s3.requests) == 1 and server.count(PRIMARY) == 0


def test_inline_images_under_the_budget_still_work(endpoint_at: Any) -> None:
    with container_server(MODEL) as server:
        endpoint_at(server.url, cloud_settings())
        event = load_event("embed_image_json", body={"image": base64.b64encode(sample_png()).decode()})
        status, body, _ = call(event, LambdaContext(timeout_seconds=5.0))
        assert status == 200 and body["dimension"] == 8
