"""Request bodies the validation layer does not parse for us: multipart uploads and raw image bodies.

API Gateway hands binary media types (``multipart/form-data``, ``image/*``) to Lambda as base64 with
``isBase64Encoded: true``; the local server does the same. The multipart parser is a small stdlib one
that keeps file bytes exact (``email``'s parser rewrites line endings in binary parts).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from omnisearch_embed.errors import InvalidInputError, PayloadTooLargeError

FILE_FIELD = "file"


@dataclass(frozen=True, slots=True)
class Part:
    """One form field: ``filename`` and ``content_type`` are set for file uploads."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is over the {limit}-byte limit", code="request_too_large")


def json_loader(max_bytes: int) -> Callable[[str], Any]:
    """A ``json_body_deserializer`` that refuses an oversized body before parsing it."""

    def load(body: str) -> Any:
        if len(body) > max_bytes or (len(body) * 4 > max_bytes and len(body.encode("utf-8")) > max_bytes):
            raise _too_large(max_bytes)
        return json.loads(body)

    return load


def body_bytes(event: BaseProxyEvent, *, max_bytes: int) -> bytes:
    """The raw body, base64-decoded when API Gateway flagged it, within ``max_bytes``."""
    raw = event.body or ""
    if event.is_base64_encoded:
        if len(raw) > (max_bytes + 2) // 3 * 4 + 4:
            raise _too_large(max_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInputError("the body is flagged base64 but is not valid base64", code="invalid_body") from e
    else:
        try:  # a str body carrying binary was made with latin-1 (one char per byte); otherwise it is UTF-8 text
            data = raw.encode("latin-1")
        except UnicodeEncodeError:
            data = raw.encode("utf-8")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _header_params(name: str, value: str) -> Message:
    msg = Message()
    msg[name] = value
    return msg


def multipart_boundary(content_type: str) -> str:
    boundary = _header_params("content-type", content_type).get_param("boundary", header="content-type")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise InvalidInputError("multipart/form-data needs a boundary parameter", code="invalid_multipart")
    return boundary


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Fields of a ``multipart/form-data`` body by name (the first of repeated names wins)."""
    delimiter = b"--" + multipart_boundary(content_type).encode("latin-1")
    if body.startswith(delimiter):
        start = 0
    elif (preamble_end := body.find(b"\r\n" + delimiter)) >= 0:
        start = preamble_end + 2
    else:
        raise InvalidInputError("the multipart body has no part with the declared boundary", code="invalid_multipart")
    fields: dict[str, Part] = {}
    for segment in body[start + len(delimiter) :].split(b"\r\n" + delimiter):
        if segment.startswith(b"--"):
            return fields
        head, sep, data = segment.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not segment.startswith(b"\r\n") or not sep:
            raise InvalidInputError("a multipart part is malformed", code="invalid_multipart")
        part = _part(head, data)
        if part is not None:
            fields.setdefault(part.name, part)
    raise InvalidInputError("the multipart body is truncated (no closing boundary)", code="invalid_multipart")


def _part(head: bytes, data: bytes) -> Part | None:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    params = _header_params("content-disposition", disposition)
    name = params.get_param("name", header="content-disposition")
    if not isinstance(name, str) or not disposition.lower().startswith("form-data"):
        return None
    filename = params.get_filename()
    return Part(name=name, data=data, filename=filename, content_type=headers.get("content-type"))
