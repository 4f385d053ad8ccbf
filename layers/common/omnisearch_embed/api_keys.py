"""Where a request carries its API key: ``x-api-key`` (API Gateway's header) or ``Authorization: Bearer``
(OpenAI's SDKs). One reading, shared by the Lambda authorizer and the local server's ``--api-key``."""

from __future__ import annotations

from collections.abc import Mapping

SOURCE_API_KEY_HEADER = "x-api-key"
SOURCE_BEARER = "authorization-bearer"
MAX_KEY_LENGTH = 1024  # API Gateway keys are 20-128 characters; anything far longer is not a key


def extract_api_key(headers: Mapping[str, str] | None) -> tuple[str, str] | None:
    """Return ``(key, source)`` from ``x-api-key`` or ``Authorization: Bearer``, or None.

    ``x-api-key`` wins when both are present: it is API Gateway's own header, so a client that sets it
    means it. Header names are matched case-insensitively, as HTTP requires.
    """
    lowered = {name.lower(): value for name, value in (headers or {}).items() if isinstance(value, str)}
    key = lowered.get("x-api-key", "").strip()
    if key:
        return (key, SOURCE_API_KEY_HEADER) if len(key) <= MAX_KEY_LENGTH else None
    scheme, _, token = lowered.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and " " not in token and len(token) <= MAX_KEY_LENGTH:
        return token, SOURCE_BEARER
    return None
