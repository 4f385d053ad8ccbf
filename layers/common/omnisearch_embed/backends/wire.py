"""The JSON wire protocol between the backends and the model code (model_code/code/inference.py).

Plain functions, apart from boto3, so the encoding, the 6 MB chunking and the response checks can be
tested byte for byte and reused by anything that speaks to the model: SageMakerBackend (InvokeEndpoint)
and LambdaModelBackend (Lambda Invoke) send the same bodies, split the same way.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from omnisearch_embed import deadline
from omnisearch_embed.embeddings import Embeddings, decode_matrix
from omnisearch_embed.errors import ITEM_REF, EmbedError, ModelError, PayloadTooLargeError
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES

CONTENT_TYPE = "application/json"
ENCODING_BASE64 = "base64"  # what we ask for: about 3x smaller than JSON floats and much faster to parse
_SEPARATORS = (",", ":")
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One invocation's worth of a batch: items ``start`` .. ``start + count - 1`` as the exact request body."""

    start: int
    count: int
    body: bytes


def _bad_response(detail: str) -> ModelError:
    return ModelError(f"the model container sent an unusable response: {detail}", code="bad_model_response")


def text_chunks(
    texts: Sequence[str],
    *,
    normalize: bool = True,
    encoding: str = ENCODING_BASE64,
    max_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES,
) -> list[Chunk]:
    """``{"texts": [...]}`` request bodies, each at most ``max_bytes``, covering ``texts`` in order."""
    # ensure_ascii keeps any str (even a lone surrogate from JSON input) encodable; texts are small anyway.
    items = [json.dumps(text).encode("ascii") for text in texts]
    return _chunks("texts", items, normalize=normalize, encoding=encoding, max_bytes=max_bytes)


def image_chunks(
    images: Sequence[bytes],
    *,
    normalize: bool = True,
    encoding: str = ENCODING_BASE64,
    max_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES,
) -> list[Chunk]:
    """``{"images": ["<base64>", ...]}`` request bodies, each at most ``max_bytes``, covering ``images`` in order."""
    items = [b'"' + base64.b64encode(image) + b'"' for image in images]  # base64 needs no JSON escaping
    return _chunks("images", items, normalize=normalize, encoding=encoding, max_bytes=max_bytes)


def _chunks(field: str, items: list[bytes], *, normalize: bool, encoding: str, max_bytes: int) -> list[Chunk]:
    # The body is prefix + b",".join(items) + suffix, so its size is known exactly before it is built.
    template = json.dumps({field: [], "normalize": normalize, "encoding": encoding}, separators=_SEPARATORS)
    prefix, suffix = (part.encode("ascii") for part in template.split("[]", 1))
    prefix += b"["
    suffix = b"]" + suffix
    overhead = len(prefix) + len(suffix)
    chunks: list[Chunk] = []
    start, size = 0, overhead
    for index, item in enumerate(items):
        if overhead + len(item) > max_bytes:
            raise PayloadTooLargeError(
                f"{field}[{index}] takes {len(item):,} bytes in the request to the model, more than one "
                f"invocation of the model can carry ({max_bytes:,} bytes); send a smaller {field[:-1]}",
                code="item_exceeds_invoke_limit",
                param=f"{field}[{index}]",
            )
        grown = size + len(item) + (1 if index > start else 0)
        if grown > max_bytes:
            chunks.append(Chunk(start, index - start, prefix + b",".join(items[start:index]) + suffix))
            start, grown = index, overhead + len(item)
        size = grown
    if start < len(items):
        chunks.append(Chunk(start, len(items) - start, prefix + b",".join(items[start:]) + suffix))
    return chunks


def send_chunks(chunks: Sequence[Chunk], send: Callable[[Chunk], Embeddings], *, max_concurrency: int) -> Embeddings:
    """``send`` each chunk (side by side when there are several, under the caller's deadline), merged in order.

    Chunks are independent, so a split batch costs about one invocation's time; the first failure cancels
    the chunks not yet started and is raised.
    """
    if len(chunks) == 1:
        return send(chunks[0])
    with ThreadPoolExecutor(max_workers=max(1, min(len(chunks), max_concurrency))) as pool:
        futures = [pool.submit(deadline.propagate(send), chunk) for chunk in chunks]
        try:
            parts = [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return merge(parts)


def decode_response(body: bytes, *, count: int, service: str, texts: bool) -> Embeddings:
    """Check and decode one container response for a chunk of ``count`` items.

    A response that breaks the protocol is the container's fault (502 ``bad_model_response``), never a 500.
    ``truncated`` and ``tokens`` are kept for texts only.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad_response(f"not JSON ({body[:80]!r})") from None
    if not isinstance(doc, dict):
        raise _bad_response("not a JSON object")
    model, dimension, raw = doc.get("model"), doc.get("dimension"), doc.get("embeddings")
    if not isinstance(model, str) or not model:
        raise _bad_response("no model id")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
        raise _bad_response(f"dimension {dimension!r} is not a positive integer")
    if isinstance(raw, str):
        try:
            vectors = decode_matrix(raw, dimension)
        except ValueError as e:
            raise _bad_response(f"base64 embeddings do not decode: {e}") from None
    elif isinstance(raw, list):
        vectors = [_float_row(row, dimension) for row in raw]
    else:
        raise _bad_response("embeddings are neither a base64 string nor a list")
    if len(vectors) != count:
        raise _bad_response(f"{len(vectors)} embeddings for {count} inputs")
    truncated = _per_item(doc.get("truncated"), count, bool, "truncated") if texts else None
    tokens = _per_item(doc.get("tokens"), count, int, "tokens") if texts else None
    logit_scale = _logit_scale(doc.get("logit_scale"))
    return Embeddings(vectors, model, service, dimension, truncated=truncated, tokens=tokens, logit_scale=logit_scale)


def _logit_scale(value: object) -> float | None:
    """The container's ``logit_scale``: absent (an older container) is None, anything but a positive number is a 502."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise _bad_response(f"logit_scale {value!r} is not a positive number")
    return float(value)


def _float_row(row: object, dimension: int) -> list[float]:
    if not isinstance(row, list) or len(row) != dimension:
        raise _bad_response(f"an embedding row is not a list of {dimension} numbers")
    try:
        return [float(value) for value in row]
    except (TypeError, ValueError):
        raise _bad_response("an embedding row holds a non-number") from None


def _per_item(values: object, count: int, kind: type, name: str) -> list | None:
    if values is None:
        return None
    if (
        not isinstance(values, list)
        or len(values) != count
        or not all(type(value) is kind for value in values)  # bool is not an int here, and vice versa
    ):
        raise _bad_response(f"{name} is not a list of {count} {kind.__name__} values")
    return values


def merge(parts: Sequence[Embeddings]) -> Embeddings:
    """Reassemble chunk results in order; two models or dimensions in one batch is refused, never mixed."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    if len(parts) == 1:
        return first
    for part in parts[1:]:
        if part.model != first.model or part.dimension != first.dimension:
            raise ModelError(
                f"the endpoint answered one batch with two models ({first.model}/{first.dimension} and "
                f"{part.model}/{part.dimension}), e.g. during a deployment; retry the request",
                code="model_mismatch",
            )
    vectors = [row for part in parts for row in part.vectors]
    truncated = None if any(p.truncated is None for p in parts) else [t for p in parts for t in p.truncated or ()]
    tokens = None if any(p.tokens is None for p in parts) else [t for p in parts for t in p.tokens or ()]
    return Embeddings(
        vectors,
        first.model,
        first.service,
        first.dimension,
        truncated=truncated,
        tokens=tokens,
        logit_scale=first.logit_scale,
    )


def locate_item(error: EmbedError, offset: int = 0) -> EmbedError:
    """Record in ``error.index`` which item of the whole call the model's message names (``images[k]``).

    The model counts from the start of its own request; ``offset`` is where that request (a chunk)
    starts in the backend call, so the service can name the item in the caller's terms.
    """
    found = ITEM_REF.match(error.message)
    if found and 400 <= error.status < 500:
        error.index = offset + int(found.group(1))
        kind = error.message[: error.message.index("[")]
        error.message = f"{kind}[{error.index}]" + error.message[found.end() :]
        error.args = (error.message,)
    return error


def error_detail(body: str) -> tuple[str, str | None]:
    """(first readable line, stable code or None) of a container's error body, never a traceback's frames.

    Our own container answers JSON ``{"code", "message"}`` (or the same inside ``"error"``); the PyTorch
    toolkit answers the InputError's JSON on the first line, then the Python traceback (older model code:
    a plain-text message there).
    """
    text, code = body.strip(), None
    doc = None
    for candidate in dict.fromkeys((text, text.split("\n", 1)[0])):  # the whole body, else its first line
        try:
            doc = json.loads(candidate) if candidate.startswith("{") else None
        except ValueError:
            continue
        break
    if isinstance(doc, dict):
        inner = doc.get("error", doc)
        if isinstance(inner, dict):
            found = inner.get("code")
            code = found if isinstance(found, str) and _ERROR_CODE.match(found) else None
            inner = inner.get("message") or inner.get("errorMessage") or inner.get("detail")
        if isinstance(inner, str) and inner.strip():
            text = inner.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "", code
    if lines[0].startswith("Traceback (most recent call last)"):  # no message before it: the exception's line
        return lines[-1], code
    return lines[0], code
