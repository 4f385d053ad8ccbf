"""Hypothesis strategies for "any body under any Content-Type" on the POST routes, and the check every answer meets.

Bodies mix raw bytes, JSON objects built from the API's own field names (texts with lone surrogates, NULs,
nesting, wrong types, image references of every kind), JSON cut short, real and broken image files, and
multipart forms whose boundary may or may not match the Content-Type's. Content types include the odd
ones clients send: multipart without a boundary, charset parameters, other casing, image types on JSON.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from omnisearch_testkit.events import S3_BUCKET, S3_KEY, sample_png
from omnisearch_testkit.images import animated, image_bytes, png_claiming, truncated_png

# Bounded and repeatable: the same examples on every run and machine, no example database, no timing.
BOUNDED = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BOUNDARY = "fuzzBoundary7MA4YWxk"
PNG = sample_png()
IMAGES = [
    PNG,
    image_bytes("JPEG"),
    image_bytes("WEBP"),
    animated("GIF"),
    image_bytes("BMP"),
    truncated_png(),
    png_claiming(20000, 20000),
    PNG[:40],
    b"GIF89a",
]
CONTENT_TYPES = [
    "",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "Application/JSON",
    "application/json;",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    'multipart/form-data; boundary=""',
    f"multipart/form-data; boundary={BOUNDARY}",
    f'multipart/form-data; boundary="{BOUNDARY}"; charset=utf-8',
    "multipart/form-data; boundary=" + "b" * 300,
    "multipart/mixed; boundary=x",
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/svg+xml",
    "image/*",
    "*/*",
    ";;;",
    "garbage",
]
FIELDS = ["text", "texts", "image", "images", "s3_uri", "input", "model", "normalize", "encoding"]
FIELDS += ["encoding_format", "dimensions", "modality", "user"]
REFS = [
    base64.b64encode(PNG).decode(),
    "data:image/png;base64," + base64.b64encode(PNG).decode(),
    "data:image/bmp;base64," + base64.b64encode(image_bytes("BMP")).decode(),
    "data:text/plain;base64,aGk=",
    "data:image/png,notbase64",
    f"s3://{S3_BUCKET}/{S3_KEY}",
    f"s3://{S3_BUCKET}/missing.png",
    f"s3://{S3_BUCKET}/\ud800.png",
    "s3://other-bucket/cat.png",
    "s3://",
    "https://example.com/cat.png",
    "ftp://x/y",
    "@@@",
]
WORDS = ["tiny-shapes", "static-test", "ViT-B-32", "float", "base64", "image", "text", "true", "false"]

# Text as JSON can carry it: any code point, lone surrogates included (json.dumps escapes them as \ud800).
texts = st.text(st.characters(codec=None) | st.characters(categories=["Cs"]), max_size=24)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts | st.sampled_from(REFS + WORDS)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3))
objects = st.fixed_dictionaries({}, optional={name: values for name in FIELDS})


@st.composite
def json_body(draw: st.DrawFn) -> bytes:
    data = json.dumps(draw(objects | values)).encode()
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) and data else data


@st.composite
def multipart(draw: st.DrawFn) -> bytes:
    boundary = draw(st.sampled_from([BOUNDARY, "other"]))
    chunks = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["file", "normalize", "encoding", "image", ""]))
        filename = draw(st.sampled_from(['; filename="c.png"', "", "; filename=\xff"]))
        data = draw(st.sampled_from(IMAGES) | st.sampled_from([b"true", b"base64", b"\xff"]) | st.binary(max_size=16))
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        chunks.append(head.encode("latin-1") + data + b"\r\n")
    body = b"".join(chunks) + (f"--{boundary}--\r\n".encode() if draw(st.booleans()) else b"")
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


bodies = st.binary(max_size=64) | json_body() | st.sampled_from(IMAGES) | multipart()
content_types = st.sampled_from(CONTENT_TYPES) | st.from_regex(r"[ -~]{0,40}", fullmatch=True)


@dataclass(frozen=True)
class Request:
    path: str
    content_type: str
    body: bytes

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example
        return f"POST {self.path} Content-Type: {self.content_type!r} body={self.body[:200]!r}"


# Well-formed requests of each route with fuzzed contents, so the examples get past schema validation.
_text_lists = st.lists(texts, min_size=1, max_size=3)
_refs = st.lists(st.sampled_from(REFS), min_size=1, max_size=3)
SHAPED: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "/embed/text": st.fixed_dictionaries({"text": texts}),
    "/embed/batch/text": st.fixed_dictionaries({"texts": _text_lists}),
    "/embed/image": st.fixed_dictionaries(
        {}, optional={"image": st.sampled_from(REFS), "s3_uri": st.sampled_from(REFS)}
    ),
    "/embed/batch/image": st.fixed_dictionaries({"images": _refs}),
    "/v1/embeddings": st.fixed_dictionaries(
        {"input": texts | _text_lists | _refs, "model": st.sampled_from(WORDS)},
        optional={"modality": st.sampled_from(["text", "image"]), "encoding_format": st.sampled_from(WORDS)},
    ),
}


@st.composite
def requests(draw: st.DrawFn, paths: list[str]) -> Request:
    path = draw(st.sampled_from(paths))
    if path in SHAPED and draw(st.booleans()):
        body = json.dumps(draw(SHAPED[path])).encode()
        ctype = draw(st.sampled_from(["application/json", "", "application/json; charset=utf-8"]) | content_types)
        return Request(path, ctype, body)
    return Request(path, draw(content_types), draw(bodies))


_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def check_answer(path: str, status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """Never a 5xx, always JSON, and an error names a stable snake_case code and a message, without a traceback."""
    text = body.decode("utf-8")
    assert status < 500, text[:500]
    assert content_type.split(";")[0].strip() == "application/json", (status, content_type)
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    answer = json.loads(text)
    if status >= 400:
        error = answer["error"]
        assert _CODE.match(error["code"]), error
        assert isinstance(error["message"], str) and error["message"], error
        if path.startswith("/v1/"):
            assert set(error) == {"message", "type", "param", "code"}, error
    return answer


def post_paths(app: Any) -> list[str]:
    """Every POST route in the app's OpenAPI document, so a new route is fuzzed without editing the test."""
    paths = app.get_openapi_schema().paths or {}
    return sorted(path for path, item in paths.items() if item.post is not None)
