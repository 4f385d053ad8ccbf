"""HTTP request -> API Gateway REST proxy event, and proxy response -> HTTP, field by field."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

from local_server.apigw_event import (
    BINARY_MEDIA_TYPES,
    INTERNAL_SERVER_ERROR,
    STAGE,
    HttpRequest,
    RouteTable,
    from_response,
    is_binary,
    to_event,
)

ROOT = Path(__file__).resolve().parents[2]
ROUTES = RouteTable(["/embed/text", "/embed/image", "/health", "/items/{id}", "/files/{proxy+}", "/items/special"])
# The keys `sam local generate-event apigateway aws-proxy` puts in an event and its requestContext.
SAM_EVENT_KEYS = {
    "body", "resource", "path", "httpMethod", "isBase64Encoded", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "stageVariables", "headers", "multiValueHeaders",
    "requestContext",
}  # fmt: skip
SAM_CONTEXT_KEYS = {
    "accountId", "resourceId", "stage", "requestId", "requestTime", "requestTimeEpoch", "identity", "path",
    "resourcePath", "httpMethod", "apiId", "protocol",
}  # fmt: skip


def test_json_post_carries_a_text_body_and_every_proxy_field() -> None:
    body = json.dumps({"text": "a red circle ✓"}).encode()
    request = HttpRequest(
        "POST",
        "/embed/text",
        "",
        [("Host", "127.0.0.1:8000"), ("Content-Type", "application/json"), ("User-Agent", "pytest")],
        body,
        "10.0.0.7",
    )
    event = to_event(request, ROUTES, request_id="req-1")
    assert event.keys() >= SAM_EVENT_KEYS
    assert event["requestContext"].keys() >= SAM_CONTEXT_KEYS
    assert event["resource"] == "/embed/text" and event["path"] == "/embed/text" and event["httpMethod"] == "POST"
    assert event["body"] == body.decode() and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert event["headers"]["content-type"] == "application/json"
    assert event["multiValueHeaders"]["user-agent"] == ["pytest"]
    assert event["headers"]["x-forwarded-for"] == "10.0.0.7" and event["headers"]["x-forwarded-port"] == "8000"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    ctx = event["requestContext"]
    assert ctx["requestId"] == "req-1" and ctx["stage"] == STAGE and ctx["resourcePath"] == "/embed/text"
    assert ctx["httpMethod"] == "POST" and ctx["path"] == "/embed/text" and ctx["domainName"] == "127.0.0.1:8000"
    assert ctx["identity"]["sourceIp"] == "10.0.0.7" and ctx["identity"]["userAgent"] == "pytest"
    assert isinstance(ctx["requestTimeEpoch"], int)
    json.dumps(event)  # the Lambda runtime hands the function JSON: the event must serialise


def test_binary_media_types_are_base64_encoded() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff binary"
    for content_type in ("image/png", "multipart/form-data; boundary=xyz", "IMAGE/JPEG"):
        event = to_event(HttpRequest("POST", "/embed/image", "", [("content-type", content_type)], png), ROUTES)
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == png


def test_non_binary_bodies_stay_text_even_when_not_utf8() -> None:
    event = to_event(HttpRequest("POST", "/embed/text", "", [("content-type", "application/json")], b"\xff{}"), ROUTES)
    assert event["isBase64Encoded"] is False and event["body"] == "\ufffd{}"


def test_no_body_is_null() -> None:
    event = to_event(HttpRequest("GET", "/health"), ROUTES)
    assert event["body"] is None and event["isBase64Encoded"] is False
    uuid.UUID(event["requestContext"]["requestId"])  # a fresh id when none is given


def test_query_strings_single_and_multi_value() -> None:
    event = to_event(HttpRequest("GET", "/health", "deep=true&tag=a&tag=b%20c&empty="), ROUTES)
    assert event["queryStringParameters"] == {"deep": "true", "tag": "b c", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"deep": ["true"], "tag": ["a", "b c"], "empty": [""]}


def test_repeated_headers_keep_the_last_single_value_and_all_multi_values() -> None:
    event = to_event(HttpRequest("GET", "/health", "", [("X-Tag", "one"), ("x-tag", "two")]), ROUTES)
    assert event["headers"]["x-tag"] == "two"
    assert event["multiValueHeaders"]["x-tag"] == ["one", "two"]


def test_api_key_header_reaches_the_identity() -> None:
    event = to_event(HttpRequest("GET", "/health", "", [("x-api-key", "k1")]), ROUTES)
    assert event["requestContext"]["identity"]["apiKey"] == "k1"


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        ("/embed/text", "/embed/text", None),
        ("/embed/text/", "/embed/text", None),
        ("/items/42", "/items/{id}", {"id": "42"}),
        ("/items/special", "/items/special", None),  # a static resource wins over a parameter
        ("/files/a/b/c.png", "/files/{proxy+}", {"proxy": "a/b/c.png"}),
        ("/nowhere", "/nowhere", None),  # unknown: the handler answers its own 404
    ],
)
def test_resources_and_path_parameters(path: str, resource: str, params: dict[str, str] | None) -> None:
    assert ROUTES.match(path) == (resource, params)
    event = to_event(HttpRequest("GET", path), ROUTES)
    assert event["resource"] == resource and event["pathParameters"] == params
    assert event["requestContext"]["resourcePath"] == resource


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [
        ("image/png", True),
        ("image/webp; q=1", True),
        ("multipart/form-data; boundary=x", True),
        ("application/json", False),
        ("text/plain", False),
        ("imagery/png", False),
        ("", False),
        (None, False),
    ],
)
def test_is_binary(content_type: str | None, binary: bool) -> None:
    assert is_binary(content_type) is binary


def test_binary_media_types_match_the_template() -> None:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    declared = template["Resources"]["EmbedApi"]["Properties"]["BinaryMediaTypes"]
    assert sorted(t.replace("~1", "/") for t in declared) == sorted(BINARY_MEDIA_TYPES)


def test_response_headers_merge_and_text_body() -> None:
    status, headers, body = from_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-One": "single", "Set-Cookie": "lost"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": '{"ok": "✓"}',
            "isBase64Encoded": False,
        }
    )
    assert status == 201 and body == '{"ok": "✓"}'.encode()
    assert sorted(headers) == [
        ("content-type", "application/json"), ("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-one", "single"),
    ]  # fmt: skip


def test_base64_response_bodies_are_decoded() -> None:
    raw = bytes(range(256))
    response = {"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    assert from_response(response) == (200, [], raw)


@pytest.mark.parametrize(
    "response",
    [
        None,
        "text",
        {"body": "no status"},
        {"statusCode": "200"},
        {"statusCode": 200, "body": "%%", "isBase64Encoded": True},
    ],
)
def test_malformed_responses_are_api_gateways_502(response: object) -> None:
    assert from_response(response) == INTERNAL_SERVER_ERROR
    assert INTERNAL_SERVER_ERROR[0] == 502
