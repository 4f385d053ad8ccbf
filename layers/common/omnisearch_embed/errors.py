"""Domain errors with a stable ``code`` and HTTP ``status``.

Every failure the caller can see is one of these; the API layer turns them into
``{"error": {"code", "message"}}`` (or OpenAI's shape) in one exception handler,
so routes and backends only ever *raise*.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from omnisearch_embed.env import ConfigError as ConfigError  # defined with the reader that raises it

# Codes for a request whose body cannot be read at all, on any route and under any Content-Type (400).
INVALID_JSON = "invalid_json"  # not JSON: bad syntax, nested too deeply, an integer of over 4,300 digits
INVALID_BODY = "invalid_body"  # not UTF-8 text, or flagged base64 and not base64
INVALID_MULTIPART = "invalid_multipart"  # multipart/form-data without a boundary, malformed or cut short
INVALID_TEXT = "invalid_text"  # a text that is not valid Unicode (a lone UTF-16 surrogate such as "\ud800")

# How the model container names one item of a call in its messages: ``images[3] is not a readable image``.
ITEM_REF = re.compile(r"^(?:texts|images)\[(\d+)\]")


class EmbedError(Exception):
    """Base class: a message for humans, a snake_case ``code`` for programs, an HTTP status."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, param: str | None = None, index: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.index = index  # the failing item's position in a backend call, renamed by the service for the caller

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body (none unless a subclass says when to retry)."""
        return {}

    def named(self, where: str | None) -> EmbedError:
        """This error about the caller's item ``where`` (``images[1]``): as ``param``, and first in the message.

        A backend names items by their place in its own call (``images[0]`` of a chunk); the caller's
        name replaces that, or leads the message when it names no item at all.
        """
        if not where:
            return self
        self.param = where
        found = ITEM_REF.match(self.message)
        if found:
            self.message = where + self.message[found.end() :]
        elif "[" in where and not self.message.startswith(where):
            self.message = f"{where}: {self.message}"
        self.args = (self.message,)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={int(self.status)}, code={self.code!r}, message={self.message!r})"


class InvalidInputError(EmbedError):
    """The request is malformed or a value is out of range (400)."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_input"


class NotFoundError(EmbedError):
    """A referenced thing does not exist: an S3 key, a model name, a route (404)."""

    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class ForbiddenError(EmbedError):
    """The request asks for something it may not have, e.g. an S3 bucket off the allow list (403)."""

    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class UnauthorizedError(EmbedError):
    """Missing or wrong API key (401)."""

    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class PayloadTooLargeError(EmbedError):
    """Body, image, pixel count or batch over a configured limit (413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class UnsupportedMediaTypeError(EmbedError):
    """Content type or image format we do not accept (415)."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class UnprocessableError(EmbedError):
    """Well-formed but unusable content, e.g. a corrupt or truncated image (422)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "unprocessable_input"


class ThrottledError(EmbedError):
    """The model endpoint (or we) refused for load; retry with backoff (429)."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "throttled"


class ModelError(EmbedError):
    """The model container failed on this input or crashed (502)."""

    status = HTTPStatus.BAD_GATEWAY
    code = "model_error"


class BackendUnavailableError(EmbedError):
    """The endpoint is missing, not InService, or the circuit is open (503)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "endpoint_unavailable"


class ModelWakingError(BackendUnavailableError):
    """The model scaled to zero and a copy is starting (minutes): a wait, not an outage (503 + Retry-After)."""

    code = "model_waking"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class BackendTimeoutError(EmbedError):
    """The endpoint did not answer within our deadline (504)."""

    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "backend_timeout"


_CALLER_ERRORS = (
    InvalidInputError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    UnprocessableError,
    ThrottledError,
)
_BY_STATUS = {int(kind.status): kind for kind in _CALLER_ERRORS}


def caller_error(status: int, message: str, code: str | None = None) -> EmbedError:
    """The model's verdict on the caller's input (a 4xx and its code) as the API's error with that status.

    The model code decides the status of each of its input errors; this only picks the class that answers
    with it. A status no class has (the container's 406 for an ``Accept`` the API never sends) is a 400.
    """
    kind = _BY_STATUS.get(status, InvalidInputError)
    return kind(message, code=code or kind.code)
