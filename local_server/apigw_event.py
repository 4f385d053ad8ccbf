"""HTTP request <-> API Gateway REST proxy (v1) event, so the Lambda handlers run unchanged behind real HTTP.

The event is built field by field as API Gateway sends it to a proxy integration: ``resource`` and
``pathParameters`` from the matching route template, single- and multi-value headers and query strings
(``null`` when absent), a ``requestContext`` with a fresh ``requestId``, and the body base64-encoded with
``isBase64Encoded: true`` when its Content-Type is one of the API's binary media types (as template.yaml
declares them), UTF-8 text otherwise. The handler's response dict goes back the way API Gateway maps it.

Header names reach the handler in lower case (as HTTP/2 clients send them through API Gateway), which keeps
the handlers honest about case-insensitive lookups; the ``events/`` fixtures cover the Title-Case form.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

# Kept equal to template.yaml's BinaryMediaTypes (there written with ~1 for "/"); a test compares them.
BINARY_MEDIA_TYPES: tuple[str, ...] = ("multipart/form-data", "image/*")
STAGE = "local"
ACCOUNT_ID = "123456789012"
API_ID = "local"
# API Gateway's own answer when the integration fails or returns something that is not a proxy response.
INTERNAL_SERVER_ERROR = (502, [("content-type", "application/json")], b'{"message": "Internal server error"}')


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the adapter needs of an HTTP request, independent of the server library."""

    method: str
    path: str
    query_string: str = ""
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class _Template:
    resource: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]


class RouteTable:
    """API Gateway resource templates (``/embed/text``, ``/items/{id}``, ``/{proxy+}``) matched against paths.

    Static templates win over parameterised ones, as in API Gateway. A path matching none is passed on
    with itself as the resource, so the handler gives its own 404.
    """

    def __init__(self, resources: Iterable[str]) -> None:
        templates = [self._compile(resource) for resource in sorted(set(resources))]
        self._static = {t.resource: t for t in templates if not t.names}
        self._dynamic = sorted((t for t in templates if t.names), key=lambda t: (t.resource.count("+"), t.resource))

    @staticmethod
    def _compile(resource: str) -> _Template:
        names: list[str] = []
        parts: list[str] = []
        for piece in re.split(r"(\{[^}]+\})", resource):
            if piece.startswith("{") and piece.endswith("}"):
                name = piece[1:-1]
                greedy = name.endswith("+")
                names.append(name.rstrip("+"))
                parts.append(f"(?P<p{len(names) - 1}>{'.+' if greedy else '[^/]+'})")
            else:
                parts.append(re.escape(piece))
        return _Template(resource, re.compile("".join(parts) + "/?"), tuple(names))

    @property
    def resources(self) -> list[str]:
        return sorted([*self._static, *(t.resource for t in self._dynamic)])

    def match(self, path: str) -> tuple[str, dict[str, str] | None]:
        """``(resource, pathParameters)`` for ``path``; parameters are ``None`` when the template has none."""
        trimmed = path.rstrip("/") or "/"
        if trimmed in self._static:
            return trimmed, None
        for template in self._dynamic:
            found = template.pattern.fullmatch(path)
            if found:
                return template.resource, {name: found.group(f"p{i}") for i, name in enumerate(template.names)}
        return path, None


def is_binary(content_type: str | None, binary_media_types: Sequence[str] = BINARY_MEDIA_TYPES) -> bool:
    """Whether API Gateway would base64-encode a body of this Content-Type (``type/*`` wildcards allowed)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    for declared in binary_media_types:
        declared = declared.lower()
        if declared in ("*/*", media) or (declared.endswith("/*") and media.startswith(declared[:-1])):
            return True
    return False


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    if not multi:
        return None, None
    return {key: values[-1] for key, values in multi.items()}, multi


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def to_event(
    request: HttpRequest,
    routes: RouteTable,
    *,
    request_id: str | None = None,
    binary_media_types: Sequence[str] = BINARY_MEDIA_TYPES,
) -> dict[str, Any]:
    """The REST proxy event API Gateway would send the Lambda function for ``request``."""
    headers = [(name.lower(), value) for name, value in request.headers]
    host = next((value for name, value in headers if name == "host"), "127.0.0.1")
    port = host.rsplit(":", 1)[1] if ":" in host else "80"
    headers += [
        ("x-forwarded-for", request.source_ip),
        ("x-forwarded-port", port),
        ("x-forwarded-proto", "http"),
        ("x-amzn-trace-id", _trace_id()),
    ]
    single_headers, multi_headers = _single_and_multi(headers)
    single_query, multi_query = _single_and_multi(parse_qsl(request.query_string, keep_blank_values=True))
    resource, path_parameters = routes.match(request.path)
    content_type = (single_headers or {}).get("content-type")
    binary = is_binary(content_type, binary_media_types)
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    now = datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method.upper(),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": request.method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": request.path,  # as behind a custom domain: no stage prefix, so Swagger UI's URLs stay local
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": (single_headers or {}).get("user-agent"),
                "user": None,
                "apiKey": (single_headers or {}).get("x-api-key"),
            },
            "domainName": host,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


def from_response(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` for a proxy integration response, or API Gateway's 502 for a malformed one.

    As in API Gateway, ``headers`` and ``multiValueHeaders`` merge; a name in both keeps the multi values.
    """
    if not isinstance(response, Mapping) or not isinstance(response.get("statusCode"), int):
        return INTERNAL_SERVER_ERROR
    multi_source = response.get("multiValueHeaders") or {}
    multi = {k.lower(): [str(v) for v in values] for k, values in multi_source.items()}
    single = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items() if k.lower() not in multi}
    headers = [(name, value) for name, value in single.items()]
    headers += [(name, value) for name, values in multi.items() for value in values]
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return INTERNAL_SERVER_ERROR
    else:
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    return response["statusCode"], headers, body
