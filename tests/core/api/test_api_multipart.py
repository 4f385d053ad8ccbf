"""api/multipart.py directly: raw bodies within their limit, and multipart forms parsed exactly or refused."""

from __future__ import annotations

import base64

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from omnisearch_embed.api.multipart import MAX_PARTS, body_bytes, multipart_boundary, parse_multipart
from omnisearch_embed.errors import InvalidInputError, PayloadTooLargeError
from omnisearch_testkit.events import MULTIPART_TYPE, make_event, multipart_body

BINARY = bytes(range(256))


def event(body: object) -> APIGatewayProxyEvent:
    return APIGatewayProxyEvent(make_event("POST", "/embed/image", body=body))


def test_body_bytes_decodes_base64_and_keeps_bytes_exact() -> None:
    assert body_bytes(event(BINARY), max_bytes=256) == BINARY
    assert body_bytes(event("plain text é"), max_bytes=100) == "plain text é".encode("latin-1")
    assert body_bytes(event("snow ☃"), max_bytes=100) == "snow ☃".encode()


def test_body_bytes_refuses_an_oversized_body_and_bad_base64() -> None:
    with pytest.raises(PayloadTooLargeError):
        body_bytes(event(BINARY), max_bytes=255)
    with pytest.raises(PayloadTooLargeError):
        body_bytes(event("x" * 11), max_bytes=10)
    broken = make_event("POST", "/embed/image", body="not base64!", base64_encoded=False)
    broken["isBase64Encoded"] = True
    with pytest.raises(InvalidInputError) as info:
        body_bytes(APIGatewayProxyEvent(broken), max_bytes=100)
    assert info.value.code == "invalid_body"


def test_parse_multipart_reads_files_and_fields_exactly() -> None:
    body = multipart_body({"file": ("a.png", BINARY, "image/png")}, {"labels": '["a"]'})
    parts = parse_multipart(body, MULTIPART_TYPE)
    assert parts["file"].data == BINARY and parts["file"].filename == "a.png"
    assert parts["file"].content_type == "image/png"
    assert parts["labels"].text() == '["a"]' and parts["labels"].filename is None


@pytest.mark.parametrize(
    ("content_type", "says"),
    [("multipart/form-data", "needs a boundary"), (f"multipart/form-data; boundary={'b' * 71}", "over 70")],
)
def test_a_missing_or_overlong_boundary_is_400(content_type: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says) as info:
        multipart_boundary(content_type)
    assert info.value.code == "invalid_multipart"


def test_truncated_unnamed_and_oversized_forms_are_400() -> None:
    body = multipart_body({"file": ("a.png", BINARY, "image/png")})
    with pytest.raises(InvalidInputError, match="truncated"):
        parse_multipart(body[:-10], MULTIPART_TYPE)
    unnamed = body.replace(b'; name="file"', b"")
    with pytest.raises(InvalidInputError, match="no Content-Disposition"):
        parse_multipart(unnamed, MULTIPART_TYPE)
    many = multipart_body({}, {f"f{i}": "x" for i in range(MAX_PARTS + 1)})
    with pytest.raises(InvalidInputError, match=f"more than {MAX_PARTS} parts"):
        parse_multipart(many, MULTIPART_TYPE)


def test_the_first_of_repeated_names_wins() -> None:
    body = multipart_body({}, {"a": "1"}) + multipart_body({}, {"a": "2"})
    assert parse_multipart(base64.b64decode(base64.b64encode(body)), MULTIPART_TYPE)["a"].text() == "1"
