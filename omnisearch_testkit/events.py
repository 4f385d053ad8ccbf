"""API Gateway REST proxy (v1) events: the ``events/*.json`` files, a builder, and their generator.

The builder produces the shape ``sam local generate-event apigateway aws-proxy`` does, with the
route's resource path, so one source serves ``sam local invoke -e``, the tests and the benchmark.
``python -m omnisearch_testkit.events`` rewrites ``events/`` (the sample PNG is drawn here, tiny-shapes style).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import uuid
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
API_KEY = "local-test-api-key"
S3_BUCKET = "omnisearch-test-images"
S3_KEY = "shapes/red-circle.png"
BOUNDARY = "------------------------omnisearchembed0123"
_SAM_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "CloudFront-Forwarded-Proto": "https",
    "CloudFront-Viewer-Country": "US",
    "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
    "User-Agent": "Custom User Agent String",
    "Via": "1.1 08f323deadbeefa7af34d5feb414ce27.cloudfront.net (CloudFront)",
    "X-Amz-Cf-Id": "cDehVQoZnx43VYQb9j2-nvCh-9z396Uhbp027Y2JvkCPNLmGJHqlaA==",
    "X-Forwarded-For": "127.0.0.1, 127.0.0.2",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Proto": "https",
    "x-api-key": API_KEY,
}


def _set_headers(event: dict[str, Any], headers: dict[str, str | None]) -> None:
    current = dict(event.get("headers") or {})
    for name, value in headers.items():
        for existing in [k for k in current if k.lower() == name.lower()]:
            del current[existing]
        if value is not None:
            current[name] = value
    event["headers"] = current
    event["multiValueHeaders"] = {k: [v] for k, v in current.items()}


def _set_query(event: dict[str, Any], query: dict[str, str] | None) -> None:
    event["queryStringParameters"] = dict(query) if query else None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None


def _set_body(event: dict[str, Any], body: Any, base64_encoded: bool | None) -> None:
    if body is None:
        event["body"], event["isBase64Encoded"] = None, False
        return
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
        return
    if base64_encoded:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode("utf-8")).decode("ascii"), True
    else:
        event["body"], event["isBase64Encoded"] = body, False


def make_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str | None] | None = None,
    query: dict[str, str] | None = None,
    base64_encoded: bool = False,
    stage: str = "dev",
) -> dict[str, Any]:
    """A REST proxy event. ``body``: dict/list (JSON), str (text), bytes (base64, as binary media types)."""
    event: dict[str, Any] = {  # keys in the order sam local generate-event writes them
        "body": None,
        "resource": path,
        "path": path,
        "httpMethod": method,
        "isBase64Encoded": False,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "headers": {},
        "multiValueHeaders": {},
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": stage,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "09/Apr/2015:12:34:56 +0000",
            "requestTimeEpoch": 1428582896000,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": API_KEY,
                "apiKeyId": "a1b2c3d4e5",
                "accessKey": None,
                "sourceIp": "127.0.0.1",
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "Custom User Agent String",
                "user": None,
            },
            "path": f"/{stage}{path}",
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "1234567890",
            "protocol": "HTTP/1.1",
        },
    }
    default_type = {"Content-Type": "application/json"} if isinstance(body, (dict, list)) else {}
    _set_headers(event, {**_SAM_HEADERS, **default_type, **(headers or {})})
    _set_query(event, query)
    _set_body(event, body, base64_encoded)
    return event


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """A copy of ``events/<name>.json``; overrides: body, headers (merged; None removes), query,
    path, method, and any other top-level key. A unique requestId keeps log lines apart."""
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    event = copy.deepcopy(event)
    if "body" in overrides:
        _set_body(event, overrides.pop("body"), overrides.pop("base64_encoded", event.get("isBase64Encoded")))
    if "headers" in overrides:
        _set_headers(event, overrides.pop("headers"))
    if "query" in overrides:
        _set_query(event, overrides.pop("query"))
    if "path" in overrides:
        event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = overrides.pop("path")
    if "method" in overrides:
        event["httpMethod"] = event["requestContext"]["httpMethod"] = overrides.pop("method")
    event.update(overrides)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def sample_png(size: int = 32, colour: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    """A small tiny-shapes style PNG: a filled circle on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (255, 255, 255))
    margin = size // 6
    ImageDraw.Draw(image).ellipse((margin, margin, size - margin, size - margin), fill=colour)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def multipart_body(files: dict[str, tuple[str, bytes, str]], fields: dict[str, str] | None = None) -> bytes:
    """What ``curl -F file=@name.png`` sends: ``files`` maps field -> (filename, bytes, content type)."""
    chunks: list[bytes] = []
    for name, value in (fields or {}).items():
        chunks.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, ctype) in files.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
        chunks.append(head.encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def build_all() -> dict[str, dict[str, Any]]:
    """Every event in ``events/``, by file name."""
    png = sample_png()
    png_b64 = base64.b64encode(png).decode("ascii")
    s3_uri = f"s3://{S3_BUCKET}/{S3_KEY}"
    data_uri = f"data:image/png;base64,{png_b64}"
    json_type = {"Content-Type": "application/json"}
    return {
        "embed_text": make_event("POST", "/embed/text", body={"text": "a red circle"}),
        "embed_text_base64": make_event(
            "POST", "/embed/text", body=json.dumps({"text": "a blue square"}), headers=json_type, base64_encoded=True
        ),
        "embed_image_multipart": make_event(
            "POST",
            "/embed/image",
            body=multipart_body({"file": ("red-circle.png", png, "image/png")}),
            headers={"Content-Type": MULTIPART_TYPE},
        ),
        "embed_image_raw_png": make_event("POST", "/embed/image", body=png, headers={"Content-Type": "image/png"}),
        "embed_image_json": make_event("POST", "/embed/image", body={"image": f"data:image/png;base64,{png_b64}"}),
        "embed_image_s3": make_event("POST", "/embed/image", body={"s3_uri": s3_uri}),
        "embed_batch_text": make_event(
            "POST", "/embed/batch/text", body={"texts": ["a red circle", "a green triangle", "a blue square"]}
        ),
        "embed_batch_image": make_event("POST", "/embed/batch/image", body={"images": [png_b64, s3_uri]}),
        "embed_batch_mixed": make_event(
            "POST",
            "/embed/batch",
            body={"items": [{"text": "a red circle"}, {"image": data_uri}, {"image": s3_uri}]},
        ),
        "classify": make_event(
            "POST",
            "/classify",
            body={
                "image": data_uri,
                "labels": ["circle", "square", "triangle", "star", "red", "green", "blue"],
                "template": "a photo of a {}",
            },
        ),
        "classify_multipart": make_event(
            "POST",
            "/classify",
            body=multipart_body(
                {"file": ("red-circle.png", png, "image/png")},
                {"labels": json.dumps(["red circle", "blue square", "green triangle"]), "top_k": "2"},
            ),
            headers={"Content-Type": MULTIPART_TYPE},
        ),
        "health": make_event("GET", "/health"),
        "health_deep": make_event("GET", "/health", query={"deep": "true"}),
        "metrics": make_event("GET", "/metrics", query={"hours": "1"}),
        "v1_embeddings": make_event(
            "POST", "/v1/embeddings", body={"input": ["a red circle", "a blue square"], "model": "tiny-shapes"}
        ),
        "v1_models": make_event("GET", "/v1/models"),
    }


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in build_all().items():
        (EVENTS_DIR / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"events/{name}.json")


if __name__ == "__main__":
    main()
