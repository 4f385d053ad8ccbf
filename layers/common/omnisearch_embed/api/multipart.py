"""Request bodies the validation layer does not parse for us: multipart uploads and raw image bodies.

API Gateway hands binary media types (``multipart/form-data``, ``image/*``) to Lambda as base64 with
``isBase64Encoded: true``; the local server does the same. Multipart is read by python-multipart's streaming
``MultipartParser`` (the one Starlette uses), which keeps file bytes exact. Powertools' own ``File`` and
``Form`` parameters cannot serve ``POST /embed/image``: a route that declares them refuses raw ``image/*``
and JSON bodies, and its parser accepts a body cut short before the closing boundary.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from omnisearch_embed.errors import INVALID_BODY, INVALID_MULTIPART, InvalidInputError, PayloadTooLargeError

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


MAX_BOUNDARY = 70  # RFC 2046
MAX_PARTS = 16


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is over the {limit}-byte limit", code="request_too_large")


def body_bytes(event: BaseProxyEvent, *, max_bytes: int) -> bytes:
    """The raw body, base64-decoded when API Gateway flagged it, within ``max_bytes``."""
    raw = event.body or ""
    if event.is_base64_encoded:
        if len(raw) > (max_bytes + 2) // 3 * 4 + 4:
            raise _too_large(max_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInputError("the body is flagged base64 but is not valid base64", code=INVALID_BODY) from e
    else:
        try:  # a str body carrying binary was made with latin-1 (one char per byte); otherwise it is UTF-8 text
            data = raw.encode("latin-1")
        except UnicodeEncodeError:
            data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _invalid(message: str) -> InvalidInputError:
    return InvalidInputError(message, code=INVALID_MULTIPART)


def _options(value: str) -> tuple[str, dict[str, str]]:
    """``("form-data", {"name": "file"})`` from a header value; parameters are UTF-8, as browsers send them."""
    kind, params = parse_options_header(value.encode("latin-1", "replace").decode("latin-1"))
    return kind.decode("latin-1"), {k.decode("latin-1"): v.decode("utf-8", "replace") for k, v in params.items()}


def multipart_boundary(content_type: str) -> bytes:
    boundary = _options(content_type)[1].get("boundary", "")
    if not boundary:
        raise _invalid(
            "multipart/form-data needs a boundary parameter (Content-Type: multipart/form-data; boundary=...)"
        )
    if len(boundary) > MAX_BOUNDARY:
        raise _invalid(f"the multipart boundary is over {MAX_BOUNDARY} characters")
    return boundary.encode("utf-8")


@dataclass
class _Collector:
    """State of python-multipart's callbacks: headers of the part being read, then its data."""

    fields: dict[str, Part] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    data: bytearray = field(default_factory=bytearray)
    parts: int = 0
    ended: bool = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda buf, start, end: self.header_name.extend(buf[start:end]),
            "on_header_value": lambda buf, start, end: self.header_value.extend(buf[start:end]),
            "on_header_end": self.header_end,
            "on_part_data": lambda buf, start, end: self.data.extend(buf[start:end]),
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _invalid(f"the form has more than {MAX_PARTS} parts")
        self.headers, self.data = {}, bytearray()

    def header_end(self) -> None:
        name = self.header_name.decode("latin-1").strip().lower()
        self.headers[name] = self.header_value.decode("latin-1").strip()  # bytes kept: parameters are UTF-8
        self.header_name, self.header_value = bytearray(), bytearray()

    def part_end(self) -> None:
        kind, params = _options(self.headers.get("content-disposition", ""))
        name = params.get("name")
        if kind != "form-data" or name is None:
            raise _invalid("a multipart part has no Content-Disposition: form-data; name=...")
        part = Part(name, bytes(self.data), params.get("filename"), self.headers.get("content-type"))
        self.fields.setdefault(name, part)

    def end(self) -> None:
        self.ended = True


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Fields of a ``multipart/form-data`` body by name (the first of repeated names wins)."""
    collector = _Collector()
    parser = MultipartParser(multipart_boundary(content_type), collector.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
    except MultipartParseError as e:
        raise _invalid(f"the multipart body is malformed at byte {e.offset} ({e})") from e
    if not collector.ended:
        raise _invalid("the multipart body is truncated (no closing boundary) or has none of the declared boundary")
    return collector.fields
