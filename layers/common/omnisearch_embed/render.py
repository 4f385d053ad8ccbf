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
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from omnisearch_embed.compact import pack_ubinary, quantize_int8
from omnisearch_embed.embeddings import Embeddings, encode_vector
from omnisearch_embed.errors import ModelError

if TYPE_CHECKING:
    from omnisearch_embed.classify import Classification

_COMPACT = (",", ":")


def _check_finite(text: bytes) -> bytes:
    if b"N" in text or b"I" in text:  # NaN / Infinity: not JSON, and never a usable embedding
        raise ModelError("the model returned a non-finite value", code="bad_model_response")
    return text


def vector_json(vector: Sequence[float], encoding: str = "float") -> str:
    """One vector as a JSON fragment: floats, ``"<base64 float32 LE>"``, int8 values or ``"<base64 bits>"``."""
    if encoding == "base64":
        return '"' + encode_vector(vector) + '"'
    if encoding != "float":
        _check_finite(to_json(vector))  # a NaN has no sign bit and no int8 value
    if encoding == "ubinary":
        return '"' + pack_ubinary(vector) + '"'
    if encoding == "int8":
        return to_json(quantize_int8(vector)[0]).decode("ascii")
    return _check_finite(to_json(vector)).decode("ascii")


def vectors_json(vectors: Sequence[Sequence[float]], encoding: str = "float") -> str:
    """Rows as a JSON array of vector fragments, in order."""
    if encoding == "float":
        return _check_finite(to_json(vectors)).decode("ascii")
    return "[" + ",".join(vector_json(v, encoding) for v in vectors) + "]"


def int8_scales(vectors: Sequence[Sequence[float]], encoding: str) -> list[float] | None:
    """Each vector's int8 scale (``v ≈ q * scale``) when ``encoding`` is int8, else None."""
    if encoding != "int8":
        return None
    _check_finite(to_json(vectors))
    return [quantize_int8(v)[1] for v in vectors]


def json_object(raw: Mapping[str, str], fields: Mapping[str, Any]) -> str:
    """A JSON object of pre-rendered ``raw`` fragments followed by ordinary ``fields``."""
    parts = [json.dumps(key) + ":" + fragment for key, fragment in raw.items()]
    rest = json.dumps(fields, separators=_COMPACT)
    if rest != "{}":
        parts.append(rest[1:-1])
    return "{" + ",".join(parts) + "}"


def _meta(emb: Embeddings, encoding: str, *, single: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"dimension": emb.dimension, "model": emb.model, "service": emb.service}
    scales = int8_scales(emb.vectors, encoding)
    if scales is not None:
        meta.update({"scale": scales[0]} if single else {"scales": scales})
    return meta


def image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/image``: ``{"embedding", "dimension", "model", "service"}`` (and ``scale`` for int8)."""
    return json_object({"embedding": vector_json(emb.vectors[0], encoding)}, _meta(emb, encoding, single=True))


def text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/text``: the image shape plus ``truncated``."""
    truncated = bool(emb.truncated and emb.truncated[0])
    fields = {**_meta(emb, encoding, single=True), "truncated": truncated}
    return json_object({"embedding": vector_json(emb.vectors[0], encoding)}, fields)


def batch_image_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/image``: ``{"embeddings", "count", "dimension", "model", "service"}`` (+ ``scales``)."""
    fields = {"count": emb.count, **_meta(emb, encoding)}
    return json_object({"embeddings": vectors_json(emb.vectors, encoding)}, fields)


def batch_text_body(emb: Embeddings, encoding: str) -> str:
    """``POST /embed/batch/text`` and ``/embed/batch``: the batch image shape plus one ``truncated`` per item."""
    truncated = [bool(t) for t in emb.truncated] if emb.truncated is not None else [False] * emb.count
    fields = {"count": emb.count, **_meta(emb, encoding), "truncated": truncated}
    return json_object({"embeddings": vectors_json(emb.vectors, encoding)}, fields)


def openai_embeddings_body(emb: Embeddings, encoding: str) -> str:
    """``POST /v1/embeddings``: OpenAI's list shape; tokens are the model tokenizer's own (images count 0)."""
    scales = int8_scales(emb.vectors, encoding)
    data = ",".join(
        '{"object":"embedding","index":'
        + str(i)
        + ',"embedding":'
        + vector_json(v, encoding)
        + ("" if scales is None else ',"scale":' + json.dumps(scales[i]))
        + "}"
        for i, v in enumerate(emb.vectors)
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
