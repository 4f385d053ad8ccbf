"""What Weaviate's multi2vec-clip Go client sends and how it reads the answer, byte for byte.

Read from weaviate/weaviate ``modules/multi2vec-clip/clients``: ``vectorizer.go`` marshals
``vecRequest{Texts, Images}`` (``omitempty`` on both since 1.25; older releases always wrote both keys
and set no content type), POSTs it with Go's default headers, reads the whole body, unmarshals it into
``vecResponse{TextVectors [][]float32, ImageVectors [][]float32, Error string}`` and only then checks
``status > 399``; ``startup.go`` polls ``GET /.well-known/ready`` with a 500 ms timeout and accepts any
status up to 299.
"""

from __future__ import annotations

import http.client
import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

READY_TIMEOUT_S = 0.5  # startup.go: context.WithTimeout(initCtx, 500*time.Millisecond)
_FLOAT32_MAX = 3.4028234663852886e38


def go_marshal(texts: list[str] | None, images: list[str] | None, *, omitempty: bool = True) -> bytes:
    """encoding/json.Marshal of vecRequest: compact, declared key order, <, > and & escaped as \\u00XX."""
    doc: dict[str, Any] = {}
    for key, value in (("texts", texts), ("images", images)):
        if value or not omitempty:
            doc[key] = value
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&\u2028\u2029":  # none of these is JSON syntax, so only string contents change
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text.encode("utf-8")


@dataclass
class GoAnswer:
    status: int
    text_vectors: list[list[float]]
    image_vectors: list[list[float]]
    error: str
    code: Any
    headers: dict[str, str]

    @property
    def failed(self) -> bool:
        return self.status > 399


def go_decode(status: int, body: bytes, headers: dict[str, str] | None = None) -> GoAnswer:
    """json.Unmarshal into vecResponse, as strictly as Go does it; raises AssertionError where Go would fail."""
    doc = json.loads(body)  # Go: "failed to parse vectorization response (status N)"
    assert isinstance(doc, dict), f"Go cannot unmarshal {type(doc).__name__} into vecResponse"
    error = doc.get("error", "")
    assert error is None or isinstance(error, str), "vecResponse.Error is a string: an object would not decode"
    vectors: dict[str, list[list[float]]] = {}
    for key in ("textVectors", "imageVectors"):
        rows = doc.get(key) or []
        assert isinstance(rows, list), f"{key} must be an array"
        for row in rows:
            assert isinstance(row, list), f"{key} must be an array of arrays"
            for value in row:
                assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{key} holds {value!r}"
                assert math.isfinite(value) and abs(value) <= _FLOAT32_MAX, f"{value} does not fit a float32"
        vectors[key] = rows
    texts, images = vectors["textVectors"], vectors["imageVectors"]
    return GoAnswer(status, texts, images, error or "", doc.get("code"), headers or {})


def go_post(
    url: str, body: bytes, *, content_type: str | None = "application/json", path: str = "/vectorize"
) -> GoAnswer:
    """POST exactly the headers Go's net/http writes (no Accept, no Connection) and decode like vectorizer.go."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("User-Agent", "Go-http-client/1.1")
        conn.putheader("Content-Length", str(len(body)))
        if content_type is not None:
            conn.putheader("Content-Type", content_type)
        conn.putheader("Accept-Encoding", "gzip")
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return go_decode(response.status, data, {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


def go_vectorize(url: str, texts: list[str] | None = None, images: list[str] | None = None) -> GoAnswer:
    return go_post(url, go_marshal(texts, images))


def check_ready(client: httpx.Client) -> httpx.Response:
    """One poll as startup.go makes it; a server slower than 500 ms raises httpx.TimeoutException here."""
    return client.get("/.well-known/ready", timeout=READY_TIMEOUT_S)
