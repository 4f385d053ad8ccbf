"""The REQUEST authorizer: x-api-key or Authorization: Bearer -> usageIdentifierKey, nothing else."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import openai
import pytest

from local_server.lambda_context import LambdaContext

authorizer = importlib.import_module("functions.authorizer.app")

API_ARN = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod"
KEY = "k3y-Abcdefghijklmnopqrstuvwxyz0123456789"


def request_event(headers: dict[str, str] | None, method: str = "POST", path: str = "/v1/embeddings") -> dict:
    """A REST API REQUEST authorizer event, shaped as API Gateway sends it."""
    return {
        "type": "REQUEST",
        "methodArn": f"{API_ARN}/{method}{path}",
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "path": f"/prod{path}",
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "apiKey": "", "userAgent": "pytest"},
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "a1b2c3d4e5",
        },
    }


def authorize(headers: dict[str, str] | None, **kw: Any) -> dict:
    return authorizer.lambda_handler(request_event(headers, **kw), LambdaContext())


def assert_allows_exactly(response: dict, method: str, path: str) -> None:
    assert response["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API_ARN}/{method}{path}"]}],
    }


def test_bearer_token_becomes_the_usage_plan_key() -> None:
    response = authorize({"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert response["usageIdentifierKey"] == KEY
    assert response["context"] == {"keySource": "authorization-bearer"}
    assert_allows_exactly(response, "POST", "/v1/embeddings")


@pytest.mark.parametrize("name", ["x-api-key", "X-API-Key", "X-Api-Key"])
def test_x_api_key_header_any_case(name: str) -> None:
    response = authorize({name: KEY}, method="POST", path="/embed/text")
    assert response["usageIdentifierKey"] == KEY
    assert response["context"] == {"keySource": "x-api-key"}
    assert_allows_exactly(response, "POST", "/embed/text")


def test_scheme_is_case_insensitive_and_whitespace_trimmed() -> None:
    response = authorize({"authorization": f"  bearer   {KEY}  "}, method="GET", path="/v1/models")
    assert response["usageIdentifierKey"] == KEY
    assert_allows_exactly(response, "GET", "/v1/models")


def test_x_api_key_wins_over_bearer() -> None:
    response = authorize({"x-api-key": KEY, "Authorization": "Bearer other-key-0123456789abcdef"})
    assert response["usageIdentifierKey"] == KEY
    assert response["context"]["keySource"] == "x-api-key"


def test_empty_x_api_key_falls_back_to_bearer() -> None:
    response = authorize({"x-api-key": "  ", "Authorization": f"Bearer {KEY}"})
    assert response["usageIdentifierKey"] == KEY


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Content-Type": "application/json"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer two words"},
        {"x-api-key": "x" * 2000},
        {"x-api-key": ""},
    ],
)
def test_no_usable_key_is_unauthorized(headers: dict[str, str] | None) -> None:
    # API Gateway maps exactly this message to 401 (UNAUTHORIZED gateway response).
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(headers)


def test_principal_is_stable_and_not_the_key() -> None:
    first = authorize({"x-api-key": KEY})
    second = authorize({"Authorization": f"Bearer {KEY}"})
    other = authorize({"x-api-key": KEY + "x"})
    assert first["principalId"] == second["principalId"] != other["principalId"]
    assert KEY not in first["principalId"]
    assert first["principalId"].startswith("apikey-")


def test_policy_keeps_the_partition_of_the_method_arn() -> None:
    event = request_event({"x-api-key": KEY}, method="GET", path="/metrics")
    event["methodArn"] = "arn:aws-cn:execute-api:cn-north-1:123456789012:a1b2c3d4e5/prod/GET/metrics"
    response = authorizer.lambda_handler(event, LambdaContext())
    assert response["policyDocument"]["Statement"][0]["Resource"] == [event["methodArn"]]


def test_the_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    authorizer.logger.setLevel("DEBUG")
    try:
        authorize({"Authorization": f"Bearer {KEY}"})
        with pytest.raises(Exception, match="Unauthorized"):
            authorize({"Authorization": "Basic Zm9vOmJhcg=="})
    finally:
        authorizer.logger.setLevel("INFO")
    records = [r for r in caplog.records if r.name == authorizer.logger.name]
    assert [r.getMessage() for r in records] == ["API key found", "no API key"]
    assert records[0].key_source == "authorization-bearer"
    assert records[0].principal.startswith("apikey-")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # a missing key is no server error
    assert KEY not in repr([vars(r) for r in caplog.records])


def test_the_headers_the_official_openai_sdk_sends_are_accepted() -> None:
    """Capture a real openai client's request (no network) and authorize exactly those headers."""
    captured: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
            "model": "ViT-B-32/openai",
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        return httpx.Response(200, json=body)

    with httpx.Client(transport=httpx.MockTransport(answer)) as http_client:
        client = openai.OpenAI(api_key=KEY, base_url="https://api.example.test/prod/v1", http_client=http_client)
        client.embeddings.create(model="ViT-B-32/openai", input="a red circle", encoding_format="float")

    (request,) = captured
    assert request.url.path == "/prod/v1/embeddings"
    response = authorize(dict(request.headers), method=request.method, path="/v1/embeddings")
    assert response["usageIdentifierKey"] == KEY
    assert response["context"]["keySource"] == "authorization-bearer"
