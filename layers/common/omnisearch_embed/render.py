"""Response bodies with vectors, serialised without the per-float cost of ``json.dumps``.

``json.dumps`` calls a Python function for every float: about half a millisecond for one 512-d
vector, more than the rest of a warm request. pydantic-core (already here for validation) writes
the same shortest round-trip digits in Rust, ten times faster; parsed back, every value is the
identical float. The shapes are the pydantic models in :mod:`omnisearch_embed.schemas` (which
document them in OpenAPI); tests check that the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import to_json

from omnisearch_embed.embeddings import Embeddings, encode_vector
from omnisearch_embed.errors import ModelError

_COMPACT = (",", ":")


def _check_finite(text: bytes) -> bytes:
    if b"N" in text or b"I" in text:  # NaN / Infinity: not JSON, and never a usable embedding
        raise ModelError("the model returned a non-finite value", code="bad_model_response")
    return text


def vector_json(vector: Sequence[float], encoding: str = "float") -> str:
    """One vector as a JSON fragment: ``[0.1,-0.2,...]`` or ``"<base64 float32 LE>"``."""
    if encoding == "base64":
        return '"' + encode_vector(vector) + '"'
    return _check_finite(to_json(vector)).decode("ascii")


def vectors_json(vectors: Sequence[Sequence[float]], encoding: str = "float") -> str:
    """Rows as a JSON array of vector fragments, in order."""
    if encoding == "base64":
        return "[" + ",".join(vector_json(v, encoding) for v in vectors) + "]"
    return _check_finite(to_json(vectors)).decode("ascii")


def json_object(raw: Mapping[str, str], fields: Mapping[str, Any]) -> str:
    """A JSON object of pre-rendered ``raw`` fragments followed by ordinary ``fields``."""
    parts = [json.dumps(key) + ":" + fragment for key, fragment in raw.items()]
    rest = json.dumps(fields, separators=_COMPACT)
    if rest != "{}":
        parts.append(rest[1:-1])
    return "{" + ",".join(parts) + "}"


def _meta(emb: Embeddings) -> dict[str, Any]:
    return {"dimension": emb.dimension, "model": emb.model, "service": emb.service}


def image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/image``: ``{"embedding", "dimension", "model", "service"}``."""
    return json_object({"embedding": vector_json(emb.vectors[0], encoding)}, _meta(emb))


def text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/text``: the image shape plus ``truncated``."""
    truncated = bool(emb.truncated and emb.truncated[0])
    return json_object({"embedding": vector_json(emb.vectors[0], encoding)}, {**_meta(emb), "truncated": truncated})


def batch_image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/image``: ``{"embeddings", "count", "dimension", "model", "service"}``."""
    return json_object({"embeddings": vectors_json(emb.vectors, encoding)}, {"count": emb.count, **_meta(emb)})


def batch_text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/text``: the batch image shape plus one ``truncated`` flag per text."""
    truncated = [bool(t) for t in emb.truncated] if emb.truncated is not None else [False] * emb.count
    fields = {"count": emb.count, **_meta(emb), "truncated": truncated}
    return json_object({"embeddings": vectors_json(emb.vectors, encoding)}, fields)


def openai_embeddings_body(emb: Embeddings, encoding: str) -> str:
    """``POST /v1/embeddings``: OpenAI's list shape; tokens are the model tokenizer's own (images count 0)."""
    data = ",".join(
        '{"object":"embedding","index":' + str(i) + ',"embedding":' + vector_json(v, encoding) + "}"
        for i, v in enumerate(emb.vectors)
    )
    tokens = sum(emb.tokens) if emb.tokens else 0
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_object({"object": '"list"', "data": "[" + data + "]"}, {"model": emb.model, "usage": usage})
