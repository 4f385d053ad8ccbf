"""Mixed batches: texts and images in one list, embedded with at most one text call and one image call.

Items are split by kind, each kind goes through :class:`EmbedService` as one call (which the backend may
split into invocations as it always does), and the rows are merged back in the caller's order. Errors name
the item by its place in the caller's list (``items[2]``, ``input[2]``), whichever call found it.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import ModelError
from omnisearch_embed.service import EmbedService

TEXT = "text"
IMAGE = "image"


def embed_mixed(
    service: EmbedService, items: Sequence[tuple[str, str]], *, normalize: bool = True, param: str = "items"
) -> Embeddings:
    """Embed ``(kind, value)`` items in order; ``kind`` is ``text`` or ``image`` (a ref as ``/embed/image`` takes).

    ``truncated`` and ``tokens`` cover every item: False and 0 for images.
    """
    service.check_count(len(items), param)
    texts = [i for i, (kind, _) in enumerate(items) if kind == TEXT]
    images = [i for i, (kind, _) in enumerate(items) if kind == IMAGE]
    parts: list[tuple[list[int], Embeddings]] = []
    strings = [items[i][1] for i in texts]
    if texts:  # texts are checked first (cheaply), so a bad one costs no image call
        name = service.check_texts(strings, param=param, positions=texts)
    if images:
        refs = [items[i][1] for i in images]
        parts.append((images, service.embed_image_refs(refs, normalize=normalize, param=param, positions=images)))
    if texts:
        parts.append((texts, service.embed_checked_texts(strings, name, normalize)))
    if len(parts) == 1:
        return _with_flags(parts[0][1], is_text=bool(texts))
    return _merge(parts, len(items))


def _with_flags(emb: Embeddings, *, is_text: bool) -> Embeddings:
    if is_text:
        return emb
    count = emb.count
    return Embeddings(
        emb.vectors, emb.model, emb.service, emb.dimension, [False] * count, [0] * count, emb.meta, emb.logit_scale
    )


def _merge(parts: list[tuple[list[int], Embeddings]], count: int) -> Embeddings:
    (_, first), (_, second) = parts
    if (first.model, first.dimension) != (second.model, second.dimension):
        raise ModelError(
            f"texts and images were embedded by two models ({first.model}/{first.dimension} and "
            f"{second.model}/{second.dimension}), e.g. during a deployment; retry the request",
            code="model_mismatch",
        )
    vectors: list[list[float]] = [[] for _ in range(count)]
    truncated = [False] * count
    tokens = [0] * count
    for positions, emb in parts:
        for j, i in enumerate(positions):
            vectors[i] = emb.vectors[j]
            if emb.truncated is not None:
                truncated[i] = bool(emb.truncated[j])
            if emb.tokens is not None:
                tokens[i] = emb.tokens[j]
    services = dict.fromkeys(emb.service for _, emb in parts)  # which answered, in call order, once each
    meta = {**first.meta, **second.meta}
    if first.meta.get("fallback") or second.meta.get("fallback"):
        meta["fallback"] = True
    return Embeddings(
        vectors,
        first.model,
        "+".join(services),
        first.dimension,
        truncated,
        tokens,
        meta,
        first.logit_scale or second.logit_scale,
    )
