"""``lambda_handler`` -> SageMakerBackend -> a real ``sagemaker-runtime`` client, answered by Stubber.

Checks what would leave the Lambda: the exact InvokeEndpoint parameters, and the serialised HTTP
request (URL, headers, body); and that SageMaker's faults reach the caller with the right status.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.embeddings import encode_matrix
from omnisearch_testkit.events import load_event, sample_png
from tests.helpers.lambda_app import use_backend

PNG_B64 = base64.b64encode(sample_png()).decode()


ENDPOINT = "omnisearch-embed-test"


def sagemaker_app(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend(monkeypatch, SageMakerBackend(ENDPOINT, "ViT-B-32/openai", client=client))


def container_answer(vectors: list[list[float]], truncated: list[bool] | None) -> bytes:
    return json.dumps(
        {
            "model": "ViT-B-32/openai",
            "dimension": len(vectors[0]),
            "embeddings": encode_matrix(vectors),
            "truncated": truncated,
            "tokens": [5] * len(vectors) if truncated is not None else None,
        }
    ).encode()


def test_lambda_to_sagemaker_with_stubber_checks_the_exact_request(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    vectors = [[0.5, -0.5, 0.25, 0.125], [1.0, 0.0, -1.0, 0.5]]
    answer = container_answer(vectors, [False, True])
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json"},
            {
                "EndpointName": ENDPOINT,
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": b'{"texts":["a red circle","a blue square"],"normalize":true,"encoding":"base64"}',
            },
        )
        sagemaker_app(client, monkeypatch)
        event = load_event("embed_batch_text", body={"texts": ["a red circle", "a blue square"]})
        response = embed_app.lambda_handler(event, LambdaContext())
        stub.assert_no_pending_responses()
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["embeddings"] == vectors and body["truncated"] == [False, True]
    assert (body["model"], body["service"], body["dimension"]) == ("ViT-B-32/openai", "sagemaker", 4)


def test_lambda_to_sagemaker_sends_these_http_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serialised HTTP request (URL, headers, body) as it would leave the Lambda."""
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    sent: list[Any] = []
    answer = container_answer([[0.0, 1.0, 0.0, 0.0]], None)

    def capture(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(answer))

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", capture)
    sagemaker_app(client, monkeypatch)
    response = embed_app.lambda_handler(load_event("embed_image_raw_png"), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    (request,) = sent
    assert request.url == f"https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/{ENDPOINT}/invocations"
    assert (
        request.headers["Content-Type"] == b"application/json" or request.headers["Content-Type"] == "application/json"
    )
    assert request.headers["Accept"] in (b"application/json", "application/json")
    assert json.loads(request.body) == {"images": [PNG_B64], "normalize": True, "encoding": "base64"}


class _Raw:
    """The urllib3-like raw stream AWSResponse reads."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, amt: int | None = None) -> bytes:
        return self._data.read(amt)

    def stream(self, amt: int = 1024, decode_content: bool = True) -> Iterator[bytes]:
        while chunk := self._data.read(amt):
            yield chunk


def test_sagemaker_throttling_reaches_the_caller_as_429(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with Stubber(client) as stub:
        for _ in range(5):
            stub.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400)
        sagemaker_app(client, monkeypatch)
        response = embed_app.lambda_handler(load_event("embed_text"), LambdaContext())
    assert response["statusCode"] == 429
    assert json.loads(response["body"])["error"]["code"]
