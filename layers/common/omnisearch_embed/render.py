"""Response bodies with vectors, serialised without the per-float cost of ``json.dumps``.

``json.dumps`` calls a Python function for every float: about half a millisecond for one 512-d
vector, more than the rest of a warm request. pydantic-core (already here for validation) writes
the same shortest round-trip digits in Rust, ten times faster; parsed back, every value is the
identical float. The shapes are the pydantic models in :mod:`omnisearch_embed.schemas` (which
document them in OpenAPI); tests check that the two agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from omnisearch_embed.compact import pack_ubinary, quantize_int8
from omnisearch_embed.embeddings import Embeddings, encode_vector
from omnisearch_embed.errors import ModelError

if TYPE_CHECKING:
    from omnisearch_embed.classify import Classification

_COMPACT = (",", ":")


def _check_finite(*vectors: Sequence[float]) -> None:
    """A NaN or an infinity is not JSON, never a usable embedding, and has no sign bit or int8 value.

    The floats themselves are checked (``math.isfinite``, a few microseconds a vector); base64 carries them
    as they are, as IEEE floats do.
    """
    if not all(all(map(math.isfinite, vector)) for vector in vectors):
        raise ModelError("the model returned a non-finite value", code="bad_model_response")


def vector_json(vector: Sequence[float], encoding: str = "float") -> str:
    """One vector as a JSON fragment: floats, ``"<base64 float32 LE>"``, int8 values or ``"<base64 bits>"``."""
    if encoding == "base64":
        return '"' + encode_vector(vector) + '"'
    _check_finite(vector)
    if encoding == "ubinary":
        return '"' + pack_ubinary(vector) + '"'
    if encoding == "int8":
        return to_json(quantize_int8(vector)[0]).decode("ascii")
    return to_json(vector).decode("ascii")


def encoded(vectors: Sequence[Sequence[float]], encoding: str = "float") -> tuple[list[str], list[float] | None]:
    """Each vector's JSON fragment and, for int8, each one's scale (``v ≈ q * scale``): one quantisation each."""
    if encoding != "int8":
        return [vector_json(v, encoding) for v in vectors], None
    _check_finite(*vectors)
    pairs = [quantize_int8(v) for v in vectors]
    return [to_json(q).decode("ascii") for q, _ in pairs], [scale for _, scale in pairs]


def vectors_json(vectors: Sequence[Sequence[float]], encoding: str = "float") -> str:
    """Rows as a JSON array of vector fragments, in order."""
    if encoding == "float":
        _check_finite(*vectors)
        return to_json(vectors).decode("ascii")
    return "[" + ",".join(encoded(vectors, encoding)[0]) + "]"


def json_object(raw: Mapping[str, str], fields: Mapping[str, Any]) -> str:
    """A JSON object of pre-rendered ``raw`` fragments followed by ordinary ``fields``."""
    parts = [json.dumps(key) + ":" + fragment for key, fragment in raw.items()]
    rest = json.dumps(fields, separators=_COMPACT)
    if rest != "{}":
        parts.append(rest[1:-1])
    return "{" + ",".join(parts) + "}"


def _meta(emb: Embeddings, scales: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"dimension": emb.dimension, "model": emb.model, "service": emb.service, **(scales or {})}


def _single(emb: Embeddings, encoding: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The one vector's fragment and the fields beside it (``scale`` for int8)."""
    (fragment,), scales = encoded(emb.vectors[:1], encoding)
    return {"embedding": fragment}, _meta(emb, None if scales is None else {"scale": scales[0]})


def _batch(emb: Embeddings, encoding: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The rows as one JSON array and the fields beside it (``count``, and ``scales`` for int8)."""
    if encoding == "float":
        rows, scales = vectors_json(emb.vectors), None
    else:
        fragments, scales = encoded(emb.vectors, encoding)
        rows = "[" + ",".join(fragments) + "]"
    return {"embeddings": rows}, {"count": emb.count, **_meta(emb, None if scales is None else {"scales": scales})}


def image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/image``: ``{"embedding", "dimension", "model", "service"}`` (and ``scale`` for int8)."""
    return json_object(*_single(emb, encoding))


def text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/text``: the image shape plus ``truncated``."""
    raw, fields = _single(emb, encoding)
    return json_object(raw, {**fields, "truncated": bool(emb.truncated and emb.truncated[0])})


def batch_image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/image``: ``{"embeddings", "count", "dimension", "model", "service"}`` (+ ``scales``)."""
    return json_object(*_batch(emb, encoding))


def batch_text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/text`` and ``/embed/batch``: the batch image shape plus one ``truncated`` per item."""
    truncated = [bool(t) for t in emb.truncated] if emb.truncated is not None else [False] * emb.count
    raw, fields = _batch(emb, encoding)
    return json_object(raw, {**fields, "truncated": truncated})


def openai_embeddings_body(emb: Embeddings, encoding: str) -> str:
    """``POST /v1/embeddings``: OpenAI's list shape; tokens are the model tokenizer's own (images count 0)."""
    fragments, scales = encoded(emb.vectors, encoding)
    data = ",".join(
        '{"object":"embedding","index":'
        + str(i)
        + ',"embedding":'
        + fragment
        + ("" if scales is None else ',"scale":' + json.dumps(scales[i]))
        + "}"
        for i, fragment in enumerate(fragments)
    )
    tokens = sum(emb.tokens) if emb.tokens else 0
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_object({"object": '"list"', "data": "[" + data + "]"}, {"model": emb.model, "usage": usage})


def classify_body(result: Classification) -> str:
    """``POST /classify``: ``{"model", "service", "template", "logit_scale", "results", "truncated_labels"}``."""
    return json.dumps(
        {
            "model": result.model,
            "service": result.service,
            "template": result.template,
            "logit_scale": result.logit_scale,
            "results": [
                {
                    "labels": [
                        {"label": s.label, "probability": s.probability, "similarity": s.similarity} for s in scores
                    ]
                }
                for scores in result.results
            ],
            "truncated_labels": result.truncated_labels,
        },
        separators=_COMPACT,
    )
